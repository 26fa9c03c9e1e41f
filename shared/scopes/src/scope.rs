//! Scopes, their implication rule, presets, and the scopes that are not yet available.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A permission a key can be granted. Order is the display order.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    VehiclesRead,
    VehiclesWrite,
    InspectionsRead,
    InspectionsWrite,
    /// Manage the tenant's webhook endpoints (SPEC §11). It reads no fleet data by
    /// itself: what an endpoint may subscribe to is bounded by the key's other scopes.
    WebhooksManage,
}

impl Scope {
    /// Every active scope, in display order.
    pub const ALL: [Scope; 5] = [
        Scope::VehiclesRead,
        Scope::VehiclesWrite,
        Scope::InspectionsRead,
        Scope::InspectionsWrite,
        Scope::WebhooksManage,
    ];

    /// The wire name, e.g. `vehicles:read`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::VehiclesRead => "vehicles:read",
            Scope::VehiclesWrite => "vehicles:write",
            Scope::InspectionsRead => "inspections:read",
            Scope::InspectionsWrite => "inspections:write",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// The scope this one implies directly: `X:write` implies `X:read`.
    pub const fn implies(self) -> Option<Scope> {
        match self {
            Scope::VehiclesWrite => Some(Scope::VehiclesRead),
            Scope::InspectionsWrite => Some(Scope::InspectionsRead),
            Scope::VehiclesRead | Scope::InspectionsRead | Scope::WebhooksManage => None,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a scope or preset name was refused. Each case is its own clear error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A name that is neither active nor announced.
    #[error("unknown scope '{scope}'; valid scopes are: {}", valid_scope_list())]
    Unknown { scope: String },
    /// A name that is announced but cannot be granted yet.
    #[error("scope '{scope}' is not available yet ({status}); valid scopes are: {}", valid_scope_list())]
    NotYetAvailable { scope: String, status: Availability },
    /// An empty list: a key must be able to do something.
    #[error("at least one scope is required; valid scopes are: {}", valid_scope_list())]
    Empty,
    /// A preset name that does not exist.
    #[error("unknown preset '{preset}'; valid presets are: {}", valid_preset_list())]
    UnknownPreset { preset: String },
}

impl ScopeError {
    /// A stable snake_case code for machines.
    pub const fn code(&self) -> &'static str {
        match self {
            ScopeError::Unknown { .. } => "unknown_scope",
            ScopeError::NotYetAvailable { .. } => "scope_not_available",
            ScopeError::Empty => "empty_scopes",
            ScopeError::UnknownPreset { .. } => "unknown_preset",
        }
    }
}

fn valid_scope_list() -> String {
    Scope::ALL.map(Scope::as_str).join(", ")
}

fn valid_preset_list() -> String {
    Preset::ALL.map(Preset::as_str).join(", ")
}

/// Where a not-yet-available scope stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Availability {
    Planned,
    UnderReview,
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Availability::Planned => "planned",
            Availability::UnderReview => "under review",
        })
    }
}

/// Scopes that are announced but cannot be granted yet, with their status.
pub const UNAVAILABLE_SCOPES: [(&str, Availability); 3] = [
    ("reports:read", Availability::Planned),
    ("users:read", Availability::UnderReview),
    ("analytics:read", Availability::UnderReview),
];

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(scope) = Scope::ALL.into_iter().find(|scope| scope.as_str() == s) {
            return Ok(scope);
        }
        match UNAVAILABLE_SCOPES.iter().find(|(name, _)| *name == s) {
            Some((name, status)) => Err(ScopeError::NotYetAvailable { scope: (*name).to_owned(), status: *status }),
            None => Err(ScopeError::Unknown {
                // Echo a bounded prefix only: the input may be huge or hostile.
                scope: s.chars().take(64).collect(),
            }),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of scopes, kept in display order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses granted scope names; refuses an empty list and any name that is not active.
    pub fn parse_granted<I, S>(names: I) -> Result<ScopeSet, ScopeError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let set = names.into_iter().map(|name| name.as_ref().trim().parse()).collect::<Result<BTreeSet<Scope>, _>>()?;
        if set.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(ScopeSet(set))
    }

    /// Parses the space-separated form used in the authorizer context.
    pub fn parse_space_separated(names: &str) -> Result<ScopeSet, ScopeError> {
        ScopeSet::parse_granted(names.split_ascii_whitespace())
    }

    /// The closure under implication: everything these scopes allow.
    pub fn effective(&self) -> ScopeSet {
        ScopeSet(self.0.iter().flat_map(|scope| std::iter::once(*scope).chain(scope.implies())).collect())
    }

    /// Whether `scope` is in this set as it stands (apply [`ScopeSet::effective`] first for implication).
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The wire names, in display order.
    pub fn names(&self) -> Vec<&'static str> {
        self.iter().map(Scope::as_str).collect()
    }

    /// Space-separated names, as in the authorizer context and `X-Key-Scopes`.
    pub fn to_space_separated(&self) -> String {
        self.names().join(" ")
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

/// Named scope bundles accepted at key creation instead of a list.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Preset {
    ReadOnly,
    InspectionSubmission,
    FullFleet,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::ReadOnly, Preset::InspectionSubmission, Preset::FullFleet];

    pub const fn as_str(self) -> &'static str {
        match self {
            Preset::ReadOnly => "read-only",
            Preset::InspectionSubmission => "inspection-submission",
            Preset::FullFleet => "full-fleet",
        }
    }

    /// The granted scopes this preset stands for.
    pub fn scopes(self) -> ScopeSet {
        let scopes: &[Scope] = match self {
            Preset::ReadOnly => &[Scope::VehiclesRead, Scope::InspectionsRead],
            Preset::InspectionSubmission => &[Scope::VehiclesRead, Scope::InspectionsWrite],
            Preset::FullFleet => &[Scope::VehiclesWrite, Scope::InspectionsWrite],
        };
        scopes.iter().copied().collect()
    }
}

impl FromStr for Preset {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|preset| preset.as_str() == s)
            .ok_or_else(|| ScopeError::UnknownPreset { preset: s.chars().take(64).collect() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn write_implies_read_and_nothing_else() {
        let granted = ScopeSet::parse_granted(["vehicles:write"]).unwrap();
        assert_eq!(granted.effective().names(), ["vehicles:read", "vehicles:write"]);
        let granted = ScopeSet::parse_granted(["inspections:read"]).unwrap();
        assert_eq!(granted.effective().names(), ["inspections:read"]);
    }

    #[test]
    fn planned_and_under_review_scopes_name_their_status() {
        let err = "reports:read".parse::<Scope>().unwrap_err();
        assert_eq!(err.code(), "scope_not_available");
        assert!(err.to_string().contains("planned"), "{err}");
        let err = "analytics:read".parse::<Scope>().unwrap_err();
        assert!(err.to_string().contains("under review"), "{err}");
    }

    #[test]
    fn unknown_scope_lists_the_valid_ones() {
        let err = "vehicles:delete".parse::<Scope>().unwrap_err();
        assert_eq!(err.code(), "unknown_scope");
        for scope in Scope::ALL {
            assert!(err.to_string().contains(scope.as_str()), "{err}");
        }
    }

    #[test]
    fn empty_list_is_its_own_error() {
        assert_eq!(ScopeSet::parse_granted(Vec::<String>::new()), Err(ScopeError::Empty));
        assert_eq!(ScopeSet::parse_space_separated("   "), Err(ScopeError::Empty));
    }

    #[test]
    fn presets_match_the_spec() {
        assert_eq!(Preset::ReadOnly.scopes().names(), ["vehicles:read", "inspections:read"]);
        assert_eq!(Preset::InspectionSubmission.scopes().names(), ["vehicles:read", "inspections:write"]);
        assert_eq!(Preset::FullFleet.scopes().names(), ["vehicles:write", "inspections:write"]);
        let err = "admin".parse::<Preset>().unwrap_err();
        assert_eq!(err.code(), "unknown_preset");
        assert!(err.to_string().contains("full-fleet"));
    }

    #[test]
    fn huge_unknown_names_are_not_echoed_whole() {
        let err = "x".repeat(10_000).parse::<Scope>().unwrap_err();
        assert!(err.to_string().len() < 300);
    }

    fn any_scope() -> impl Strategy<Value = Scope> {
        proptest::sample::select(Scope::ALL.to_vec())
    }

    fn any_scope_set() -> impl Strategy<Value = ScopeSet> {
        proptest::collection::vec(any_scope(), 0..6).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn closure_is_idempotent(set in any_scope_set()) {
            prop_assert_eq!(set.effective().effective(), set.effective());
        }

        #[test]
        fn closure_is_extensive_and_monotone(a in any_scope_set(), b in any_scope_set()) {
            prop_assert!(a.is_subset(&a.effective()));
            let union: ScopeSet = a.iter().chain(b.iter()).collect();
            prop_assert!(a.effective().is_subset(&union.effective()));
        }

        #[test]
        fn display_then_parse_is_identity(scope in any_scope()) {
            prop_assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
        }

        #[test]
        fn space_separated_round_trips(set in any_scope_set().prop_filter("non-empty", |s| !s.is_empty())) {
            prop_assert_eq!(ScopeSet::parse_space_separated(&set.to_space_separated()), Ok(set));
        }

        #[test]
        fn arbitrary_text_never_panics_and_only_active_names_parse(s in ".{0,40}") {
            if let Ok(scope) = s.parse::<Scope>() {
                prop_assert!(Scope::ALL.contains(&scope));
                prop_assert_eq!(scope.as_str(), s.as_str());
            }
        }
    }

    #[test]
    fn presets_only_contain_active_scopes() {
        for preset in Preset::ALL {
            let scopes = preset.scopes();
            assert!(!scopes.is_empty());
            for scope in scopes.iter() {
                assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope), "{preset:?}");
            }
        }
    }

    #[test]
    fn unavailable_scopes_never_parse_as_active() {
        for (name, _) in UNAVAILABLE_SCOPES {
            assert!(matches!(name.parse::<Scope>(), Err(ScopeError::NotYetAvailable { .. })));
        }
    }
}
