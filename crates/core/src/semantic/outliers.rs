//! TODO(skeleton): outliers
