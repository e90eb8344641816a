//! TODO(skeleton): openimages
