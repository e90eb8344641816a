//! TODO(skeleton): imagenet
