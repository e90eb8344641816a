//! Dataset loaders: each turns the official files into a [`crate::taxonomy::TaxonomyNode`] tree.

pub mod coco;
pub mod download;
pub mod imagenet;
pub mod openimages;
pub mod tencent;
