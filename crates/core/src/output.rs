//! TODO(skeleton): output
