//! TODO(skeleton): download
