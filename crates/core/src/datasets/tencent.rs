//! TODO(skeleton): tencent
