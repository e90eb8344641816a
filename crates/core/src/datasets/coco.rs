//! TODO(skeleton): coco
