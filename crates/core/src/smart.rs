//! TODO(skeleton): smart
