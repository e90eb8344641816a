//! TODO(skeleton): shaper
