//! TODO(skeleton): job
