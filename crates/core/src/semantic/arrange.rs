//! TODO(skeleton): arrange
