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

/// Most candidates one search compares with the word (those of a similar length, in candidate
/// order): a search costs at most this many edit distances however many names a file defines.
pub const MAX_COMPARED: usize = 10_000;

/// The closest candidate within a distance of 2 (or a third of the word's length, if larger),
/// ties broken by candidate order. Only candidates whose length is within that distance can
/// qualify, and only the first [`MAX_COMPARED`] of them are compared.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let len = word.chars().count();
    let limit = (len / 3).max(2);
    let word = word.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    let mut compared = 0;
    for c in candidates {
        // A char is 1 to 4 bytes: reject by byte length before counting chars.
        if c.len() + limit < len || c.len() > 4 * (len + limit) {
            continue;
        }
        if c.chars().count().abs_diff(len) > limit {
            continue;
        }
        if compared == MAX_COMPARED {
            break;
        }
        compared += 1;
        let d = edit_distance(&word, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
            if d == 0 {
                break;
            }
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

    #[test]
    fn a_search_among_many_names_compares_a_bounded_number() {
        // Names of other lengths are never compared; a close name among the first
        // `MAX_COMPARED` of similar length is found, one further on is not looked at.
        let long: Vec<String> = (0..100_000)
            .map(|i| format!("service-number-{i:06}"))
            .collect();
        let mut names: Vec<&str> = long.iter().map(String::as_str).collect();
        names.push("db");
        assert_eq!(closest("dbb", names.iter().copied()), Some("db"));
        assert_eq!(
            closest("service-number-000100x", names.iter().copied()),
            Some("service-number-000100")
        );
        let target = format!("service-number-{:06}", MAX_COMPARED + 10);
        let found = closest(&format!("{target}x"), names.iter().copied());
        assert!(found.is_some_and(|f| f != target), "{found:?}");
    }
}
