//! The default outlier method, `typicality`: how far an item's relatedness to its list falls
//! below what is typical for that list. Hand-written: no crate scores list membership.
//!
//! Why this shape (see the README for the evaluation):
//! - items are embedded as `a photo of a {item}`, which puts every term in the same frame;
//! - every vector is centred on a background (the mean of 233 generic nouns in the same
//!   frame) and re-normalised, so the similarity every English noun shares with every other
//!   does not hide the difference between "fits" and "does not fit";
//! - an item's relatedness `x` is the mean of its leave-one-out mean cosine to the other items
//!   and its cosine to the list's category name (the key above the list);
//! - the score is the shortfall of `x` below the list's median, in units of the larger of the
//!   median itself, a floor and two robust standard deviations, so a tight list and a loose
//!   list are judged on their own spread;
//! - WordNet, where the item and the category name resolve, moves the score by a fixed step:
//!   down when the item is a kind of the category, up when it is not;
//! - the result is shifted and clamped to [0, 1] so that a threshold `t` flags about
//!   `10^-(1.4 + 2 t)` of the ordinary items of a list (embeddings only): 0.1 about 2.5 %,
//!   0.3 about 1 %, 0.5 about 0.4 %.
//!
//! Deterministic: no randomness, f64 arithmetic in a fixed order. The same formulas are in the
//! Python reference used to design it (numbers checked in the tests).

use crate::wordnet::WordNet;

/// Text template items and category names are embedded in.
pub const TEMPLATE_PREFIX: &str = "a photo of a ";

/// Floor of the scale: a very tight list still needs a real drop to flag anything.
const M0: f64 = 0.15;
/// Robust standard deviations in the scale.
const K_SIGMA: f64 = 2.0;
/// MAD to standard deviation for normal data.
const MAD_TO_SIGMA: f64 = 1.4826;
/// Score step WordNet adds or removes.
const WN_SHIFT: f64 = 0.25;
/// Shortfall (in scale units) below which the score is 0; sets where thresholds fall.
const OFFSET: f64 = 0.7;

/// Generic English nouns whose mean (in the template) is the background every vector is
/// centred on.
pub const BACKGROUND_WORDS: [&str; 233] = [
    "dog",
    "cat",
    "car",
    "house",
    "tree",
    "flower",
    "book",
    "chair",
    "table",
    "water",
    "food",
    "bird",
    "fish",
    "horse",
    "city",
    "river",
    "mountain",
    "computer",
    "phone",
    "shoe",
    "shirt",
    "hat",
    "bread",
    "apple",
    "music",
    "song",
    "game",
    "ball",
    "door",
    "window",
    "road",
    "bridge",
    "boat",
    "train",
    "plane",
    "church",
    "school",
    "hospital",
    "doctor",
    "teacher",
    "child",
    "woman",
    "man",
    "king",
    "money",
    "paper",
    "glass",
    "stone",
    "metal",
    "wood",
    "fire",
    "cloud",
    "rain",
    "snow",
    "sun",
    "moon",
    "star",
    "storm",
    "disease",
    "love",
    "anger",
    "idea",
    "language",
    "number",
    "color",
    "sound",
    "light",
    "time",
    "day",
    "night",
    "week",
    "year",
    "war",
    "peace",
    "law",
    "sport",
    "dance",
    "painting",
    "statue",
    "tool",
    "knife",
    "hammer",
    "gun",
    "bottle",
    "cup",
    "box",
    "bag",
    "bed",
    "lamp",
    "clock",
    "key",
    "ring",
    "coin",
    "flag",
    "map",
    "island",
    "forest",
    "desert",
    "beach",
    "insect",
    "snake",
    "kitchen",
    "garden",
    "farm",
    "village",
    "street",
    "market",
    "office",
    "factory",
    "library",
    "museum",
    "castle",
    "tower",
    "wall",
    "roof",
    "floor",
    "stairs",
    "carpet",
    "mirror",
    "pillow",
    "blanket",
    "spoon",
    "fork",
    "plate",
    "bowl",
    "pan",
    "oven",
    "fridge",
    "cake",
    "cheese",
    "egg",
    "milk",
    "rice",
    "soup",
    "salad",
    "meat",
    "orange",
    "banana",
    "grape",
    "potato",
    "onion",
    "tomato",
    "corn",
    "wheat",
    "grass",
    "leaf",
    "root",
    "seed",
    "rose",
    "oak",
    "pine",
    "cow",
    "pig",
    "sheep",
    "goat",
    "chicken",
    "duck",
    "eagle",
    "owl",
    "frog",
    "turtle",
    "spider",
    "bee",
    "butterfly",
    "whale",
    "shark",
    "lion",
    "tiger",
    "bear",
    "wolf",
    "monkey",
    "elephant",
    "mouse",
    "rabbit",
    "deer",
    "baby",
    "girl",
    "boy",
    "friend",
    "soldier",
    "farmer",
    "artist",
    "singer",
    "pilot",
    "nurse",
    "judge",
    "queen",
    "priest",
    "truck",
    "bus",
    "bicycle",
    "ship",
    "rocket",
    "engine",
    "wheel",
    "wire",
    "battery",
    "camera",
    "guitar",
    "piano",
    "drum",
    "violin",
    "pencil",
    "letter",
    "newspaper",
    "movie",
    "picture",
    "photograph",
    "poem",
    "story",
    "question",
    "answer",
    "problem",
    "reason",
    "plan",
    "fear",
    "joy",
    "hope",
    "pain",
    "memory",
    "dream",
    "health",
    "price",
    "job",
    "meeting",
    "party",
    "holiday",
    "birthday",
    "wedding",
    "accident",
    "fight",
    "journey",
    "lesson",
];

/// The text embedded for an item (or a category name).
pub fn item_text(item: &str) -> String {
    format!("{TEMPLATE_PREFIX}{item}")
}

/// The texts of the background, in order.
pub fn background_texts() -> impl Iterator<Item = String> {
    BACKGROUND_WORDS.iter().map(|w| item_text(w))
}

/// The category a list key names: `other_bird`, `other bird` and `Other (bird)` name `bird`;
/// lower case, trimmed; `None` when nothing is left.
pub fn category_text(key: &str) -> Option<String> {
    let k = key.trim();
    let lower = k.to_lowercase();
    let inner = if lower.starts_with("other") && lower.ends_with(')') {
        lower["other".len()..].trim_start().strip_prefix('(').map(|r| r[..r.len() - 1].to_string())
    } else {
        None
    };
    let inner = inner.or_else(|| {
        ["other_", "other "].iter().find_map(|p| lower.strip_prefix(p)).map(str::to_string)
    });
    let name = inner.unwrap_or(lower).trim().to_string();
    (!name.is_empty()).then_some(name)
}

/// What WordNet says of an item and its list's category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// Some sense of the item is the category or a kind of it.
    Under,
    /// Both resolve, and no sense of the item is under any sense of the category.
    NotUnder,
    /// The item or the category has no noun sense.
    Unknown,
}

/// The relation of each item to the category `key` names (all noun senses, through morphy;
/// hypernym and instance-hypernym links, transitively).
pub fn wordnet_relations(items: &[String], key: &str, wn: &WordNet) -> Vec<Relation> {
    let category = category_text(key).map(|c| wn.synsets_for(&c)).unwrap_or_default();
    items
        .iter()
        .map(|item| {
            let senses = wn.synsets_for(item);
            if category.is_empty() || senses.is_empty() {
                return Relation::Unknown;
            }
            let under = senses.iter().any(|s| wn.is_kind_of_any(s, &category));
            if under {
                Relation::Under
            } else {
                Relation::NotUnder
            }
        })
        .collect()
}

/// The mean of the background texts' vectors (plain mean, not normalised).
pub fn background_vector(vectors: &[&[f32]]) -> Vec<f64> {
    let dim = vectors.first().map_or(0, |v| v.len());
    let mut mean = vec![0.0f64; dim];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v.iter()) {
            *m += f64::from(*x);
        }
    }
    let n = vectors.len().max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

/// `e - b`, re-normalised (a zero vector stays zero).
pub fn centre(e: &[f32], b: &[f64]) -> Vec<f64> {
    let mut v = Vec::with_capacity(e.len());
    centre_into(e, b, &mut v);
    v
}

/// [`centre`] into a buffer (reused across items: one allocation per list, not per item).
pub fn centre_into(e: &[f32], b: &[f64], out: &mut Vec<f64>) {
    out.clear();
    out.extend(e.iter().zip(b).map(|(x, m)| f64::from(*x) - m));
    let norm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 1e-12 {
        out.iter_mut().for_each(|x| *x /= norm);
    } else {
        out.iter_mut().for_each(|x| *x = 0.0);
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Median of the values (mean of the two middle ones for an even count).
fn median(values: &[f64]) -> f64 {
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// An item's relatedness to its list: leave-one-out mean cosine to the other items, averaged
/// with its cosine to the category when there is one.
fn relatedness(items: &[&[f32]], background: &[f64], category: Option<&[f32]>) -> Vec<f64> {
    let n = items.len();
    let u: Vec<Vec<f64>> = items.iter().map(|e| centre(e, background)).collect();
    let mut sum = vec![0.0f64; background.len()];
    for v in &u {
        for (s, x) in sum.iter_mut().zip(v) {
            *s += x;
        }
    }
    let uc = category.map(|c| centre(c, background));
    u.iter()
        .map(|v| {
            let loo = (dot(v, &sum) - dot(v, v)) / (n - 1) as f64;
            match &uc {
                Some(c) => (loo + dot(v, c)) / 2.0,
                None => loo,
            }
        })
        .collect()
}

/// Scores in [0, 1] of one list's items (higher = more outlying), from the vectors of their
/// [`item_text`]s, the background mean, the category name's vector and WordNet's relations
/// when known. Lists of fewer than 3 items score 0.
pub fn score_list(
    items: &[&[f32]],
    background: &[f64],
    category: Option<&[f32]>,
    relations: Option<&[Relation]>,
) -> Vec<f64> {
    let n = items.len();
    if n < super::outliers::MIN_ITEMS {
        return vec![0.0; n];
    }
    let x = relatedness(items, background, category);
    let m = median(&x);
    let deviations: Vec<f64> = x.iter().map(|v| (v - m).abs()).collect();
    let sigma = MAD_TO_SIGMA * median(&deviations);
    let scale = m.max(M0).max(K_SIGMA * sigma);
    x.iter()
        .enumerate()
        .map(|(i, xi)| {
            let shift = match relations.map(|r| r[i]) {
                Some(Relation::Under) => -WN_SHIFT,
                Some(Relation::NotUnder) => WN_SHIFT,
                _ => 0.0,
            };
            ((m - xi) / scale + shift - OFFSET).clamp(0.0, 1.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit vector near `axis` of `dim`, with a little deterministic noise.
    fn near(axis: usize, dim: usize, seed: u64, noise: f32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut v: Vec<f32> = (0..dim)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                ((state >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * noise
            })
            .collect();
        v[axis] += 1.0;
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }

    fn scores(vectors: &[Vec<f32>], category: Option<&[f32]>) -> Vec<f64> {
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        score_list(&refs, &vec![0.0; vectors[0].len()], category, None)
    }

    #[test]
    fn a_planted_far_item_is_flagged_and_nothing_else() {
        let mut list: Vec<Vec<f32>> = (0..12).map(|i| near(0, 16, i, 0.6)).collect();
        list.insert(5, near(7, 16, 99, 0.6));
        let s = scores(&list, None);
        let flagged: Vec<usize> = (0..s.len()).filter(|&i| s[i] > 0.1).collect();
        assert_eq!(flagged, [5], "{s:?}");
        assert!(s.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn a_tight_list_flags_nothing() {
        let list: Vec<Vec<f32>> = (0..20).map(|i| near(3, 16, i, 0.3)).collect();
        assert!(scores(&list, None).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_category_name_pulls_members_in() {
        // Two equal halves: only the category says which half belongs.
        let mut list: Vec<Vec<f32>> = (0..6).map(|i| near(0, 16, i, 0.2)).collect();
        list.extend((0..3).map(|i| near(9, 16, 50 + i, 0.2)));
        let category = near(0, 16, 77, 0.0);
        let with = scores(&list, Some(&category));
        let without = scores(&list, None);
        assert!(with[..6].iter().all(|&x| x == 0.0), "{with:?}");
        assert!(with[6..].iter().all(|&x| x > 0.0), "{with:?}");
        let sum = |s: &[f64]| s[6..].iter().sum::<f64>();
        assert!(sum(&with) > sum(&without), "{with:?} vs {without:?}");
    }

    #[test]
    fn identical_items_duplicates_and_ties_score_alike() {
        let same = vec![near(1, 8, 1, 0.0); 5];
        assert_eq!(scores(&same, None), vec![0.0; 5]);
        // A duplicated misfit: both copies get the same score, lower than a single one.
        let mut list: Vec<Vec<f32>> = (0..10).map(|i| near(0, 16, i, 0.5)).collect();
        list.push(near(8, 16, 42, 0.5));
        let single = scores(&list, None)[10];
        list.push(near(8, 16, 42, 0.5));
        let twins = scores(&list, None);
        assert_eq!(twins[10], twins[11]);
        assert!(twins[10] < single, "{} vs {single}", twins[10]);
        // Same input, same output.
        assert_eq!(scores(&list, None), twins);
    }

    #[test]
    fn lists_of_three_work_and_shorter_lists_score_zero() {
        let list = vec![near(0, 8, 1, 0.1), near(0, 8, 2, 0.1), near(5, 8, 3, 0.1)];
        let s = scores(&list, None);
        assert!(s[2] > 0.1 && s[0] == 0.0 && s[1] == 0.0, "{s:?}");
        let refs: Vec<&[f32]> = list[..2].iter().map(Vec::as_slice).collect();
        assert_eq!(score_list(&refs, &[0.0; 8], None, None), vec![0.0, 0.0]);
    }

    #[test]
    fn wordnet_membership_moves_the_score_by_a_fixed_step() {
        let mut list: Vec<Vec<f32>> = (0..12).map(|i| near(0, 16, i, 0.6)).collect();
        list.push(near(7, 16, 99, 0.6));
        let refs: Vec<&[f32]> = list.iter().map(Vec::as_slice).collect();
        let b = vec![0.0; 16];
        let plain = score_list(&refs, &b, None, None)[12];
        let mut rel = vec![Relation::Unknown; 13];
        rel[12] = Relation::Under;
        let under = score_list(&refs, &b, None, Some(&rel))[12];
        rel[12] = Relation::NotUnder;
        let not_under = score_list(&refs, &b, None, Some(&rel))[12];
        assert!((plain - under - WN_SHIFT).abs() < 1e-12 || under == 0.0, "{plain} {under}");
        assert!(not_under > plain || not_under == 1.0);
    }

    #[test]
    fn category_names_come_from_list_keys() {
        assert_eq!(category_text("other_bird").as_deref(), Some("bird"));
        assert_eq!(category_text("other hand tool").as_deref(), Some("hand tool"));
        assert_eq!(category_text("Other (Hand Tool)").as_deref(), Some("hand tool"));
        assert_eq!(category_text(" Edible Fruit ").as_deref(), Some("edible fruit"));
        assert_eq!(category_text("Other ()"), None);
        assert_eq!(item_text("frog"), "a photo of a frog");
        assert_eq!(background_texts().count(), 233);
    }

    #[test]
    fn wordnet_relations_follow_hypernyms() {
        let wn = crate::test_support::wn();
        let items: Vec<String> =
            ["dog", "bullfrog", "hammer", "xyzzyq"].iter().map(|s| s.to_string()).collect();
        let rel = wordnet_relations(&items, "other_animal", wn);
        assert_eq!(rel, [Relation::Under, Relation::Under, Relation::NotUnder, Relation::Unknown]);
        assert_eq!(wordnet_relations(&items, "Qwxyz", wn), vec![Relation::Unknown; 4]);
    }
}
