//! TODO(skeleton): manifest
