//! "Did you mean ...?": the known word nearest a misspelt one, for
//! attributes, service ids and class names.

/// The known word nearest `word`, if it is near enough to be a typo of it.
pub(crate) fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(word, k), *k))
        .filter(|&(d, k)| d <= 2.max(k.len() / 4))
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_table() {
        let known = ["restart", "process", "pidfile", "timeout"];
        for (word, want) in [
            ("restrat", Some("restart")),
            ("proces", Some("process")),
            ("pidfle", Some("pidfile")),
            ("colour", None),
            ("", None),
        ] {
            assert_eq!(closest(word, &known), want, "{word}");
        }
    }
}
