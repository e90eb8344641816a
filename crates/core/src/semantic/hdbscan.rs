//! TODO(skeleton): hdbscan
