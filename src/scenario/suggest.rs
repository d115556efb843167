//! "Did you mean ...?": the closest known name to a misspelt one.

/// Levenshtein edit distance between two strings, by chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a distance of 2 (or a third of the word's length, if larger),
/// ties broken by candidate order.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).max(2);
    let mut best: Option<(usize, &'a str)> = None;
    for c in candidates {
        let d = edit_distance(&word.to_lowercase(), &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A hint for an unknown name: "did you mean `x`?" or the list of known names.
pub fn hint<'a, I>(word: &str, candidates: I, what: &str) -> String
where
    I: IntoIterator<Item = &'a str> + Clone,
{
    match closest(word, candidates.clone()) {
        Some(c) => format!("did you mean `{c}`?"),
        None => {
            let all: Vec<String> = candidates
                .into_iter()
                .take(12)
                .map(|c| format!("`{c}`"))
                .collect();
            if all.is_empty() {
                format!("no {what} is defined")
            } else {
                format!("known {what}s: {}", all.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("capcity", "capacity"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["orders-db", "payments", "edge"];
        assert_eq!(closest("orders_db", names), Some("orders-db"));
        assert_eq!(closest("zzz", names), None);
        assert_eq!(
            hint("paymnts", names, "service"),
            "did you mean `payments`?"
        );
        assert!(hint("zzz", names, "service").starts_with("known services: `orders-db`"));
    }
}
