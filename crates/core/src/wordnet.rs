//! TODO(skeleton): wordnet
