//! Ladder grouping: which ladder and rendition a published stream name belongs to.

/// Where a published name lands: ladder `base`, rendition `label`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LadderName {
    /// The ladder (the name viewers use in URLs).
    pub base: String,
    /// The rendition within the ladder; `src` for a name outside the grouping rule.
    pub label: String,
}

/// The label given to a stream that is a ladder of one.
pub const SOLE_RENDITION: &str = "src";

/// Splits `{base}_{label}` when `label` is `\d+p` or one of `labels`; otherwise the whole
/// name is a ladder of one with rendition [`SOLE_RENDITION`].
pub fn ladder_name(name: &str, labels: &[String]) -> LadderName {
    if let Some((base, label)) = name.rsplit_once('_') {
        let numeric_p = label.len() > 1
            && label.ends_with('p')
            && label[..label.len() - 1].bytes().all(|b| b.is_ascii_digit());
        if !base.is_empty() && (numeric_p || labels.iter().any(|l| l == label)) {
            return LadderName {
                base: base.to_string(),
                label: label.to_string(),
            };
        }
    }
    LadderName {
        base: name.to_string(),
        label: SOLE_RENDITION.to_string(),
    }
}

/// True when `app` is a path the HTTP router answers itself (see
/// [`crate::urls::RESERVED_APPS`]): its streams could not be played.
pub fn reserved_app(app: &str) -> bool {
    crate::urls::is_reserved_app(app)
}

/// True when `s` is safe as one URL path segment and one stream name: no separators,
/// no dot-only names, nothing that needs escaping.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        crate::config::LadderConfig::default().labels
    }

    #[test]
    fn groups_resolution_and_listed_labels() {
        let l = labels();
        assert_eq!(
            ladder_name("show_720p", &l),
            LadderName {
                base: "show".into(),
                label: "720p".into()
            }
        );
        assert_eq!(
            ladder_name("my_show_low", &l),
            LadderName {
                base: "my_show".into(),
                label: "low".into()
            }
        );
        assert_eq!(
            ladder_name("show", &l),
            LadderName {
                base: "show".into(),
                label: "src".into()
            }
        );
        assert_eq!(ladder_name("show_p", &l).base, "show_p");
        assert_eq!(ladder_name("show_720x", &l).base, "show_720x");
        assert_eq!(ladder_name("_720p", &l).base, "_720p");
    }

    #[test]
    fn names_are_url_safe() {
        assert!(valid_name("show_720p"));
        assert!(valid_name("a.b-c"));
        assert!(!valid_name(""));
        assert!(!valid_name(".."));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("a b"));
        assert!(!valid_name("a?b"));
    }

    #[test]
    fn route_names_are_reserved_apps() {
        for app in ["api", "time", "metrics", "vendor", "API", "Metrics"] {
            assert!(reserved_app(app), "{app}");
        }
        for app in ["live", "apis", "timeline", "tv"] {
            assert!(!reserved_app(app), "{app}");
        }
    }
}
