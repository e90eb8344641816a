//! TODO(skeleton): compare
