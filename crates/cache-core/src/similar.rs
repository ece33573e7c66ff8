//! How far apart two names are, for "did you mean …?" suggestions (a mistyped file name,
//! configuration key or option).

/// The Levenshtein distance between `a` and `b` by characters: the fewest insertions,
/// deletions and substitutions that turn one into the other.
///
/// ```
/// assert_eq!(cache_core::edit_distance("confg.json", "config.json"), 1);
/// assert_eq!(cache_core::edit_distance("max_sise", "max_size"), 1);
/// assert_eq!(cache_core::edit_distance("", "abc"), 3);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_single_character_edits_both_ways() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("sitting", "kitten"), 3);
        assert_eq!(edit_distance("--dry-rn", "--dry-run"), 1);
        assert_eq!(edit_distance("é", "e"), 1, "by characters, not bytes");
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
