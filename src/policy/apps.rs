//! Which app ids the keyword targets `Office365` and `AllMicrosoftApps`
//! stand for, and how sure we are.
//!
//! Microsoft documents `Office365` as the Conditional Access "Office 365"
//! app group and `AllMicrosoftApps` as "any Microsoft cloud application",
//! and publishes the group's member *names*, not ids. The built-in table
//! (`data/microsoft-apps.csv`, its header names every source and date) joins
//! those names with Microsoft's lists of first-party app ids. Where the table
//! does not decide, the sign-in's own evidence does: the tenant that owns the
//! client app and the resource (`appOwnerTenantId`, `resourceOwnerTenantId`).
//! An app owned by neither of Microsoft's tenants is no Microsoft app; a
//! Microsoft app the table lacks, or an app whose owner the export does not
//! give, is `unknown` for the keyword, with what to supply (`--app-table`).
//! Never `no` on a guess: see docs/policy-semantics.md.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{bail, Context as _, Result};

use super::evaluate::Tri;
use crate::model::Guid;

pub const TABLE_VERSION: &str = "microsoft-apps-2026.12";

const BUILT_IN: &str = include_str!("data/microsoft-apps.csv");

/// The tenant that owns Microsoft's first-party service principals
/// ("Microsoft Services"; Microsoft Learn, "Verify first-party Microsoft
/// applications in sign-in reports").
pub const MICROSOFT_SERVICES_TENANT: Guid = Guid(0xf8cdef31_a31e_4b4a_93e4_5f571e91255a);
/// Microsoft's own tenant, which owns some Microsoft apps (Graph Explorer,
/// Microsoft Graph Command Line Tools: same page).
pub const MICROSOFT_TENANT: Guid = Guid(0x72f988bf_86f1_41af_91ab_2d7cd011db47);

/// A keyword app target.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Keyword {
    Office365,
    AllMicrosoftApps,
}

impl Keyword {
    pub fn parse(s: &str) -> Option<Keyword> {
        if s.eq_ignore_ascii_case("Office365") {
            Some(Keyword::Office365)
        } else if s.eq_ignore_ascii_case("AllMicrosoftApps") {
            Some(Keyword::AllMicrosoftApps)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Office365 => "Office365",
            Keyword::AllMicrosoftApps => "AllMicrosoftApps",
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    name: String,
    office365: Tri,
    microsoft: Tri,
    /// `learn`, `graph`, or the `--app-table` file.
    source: String,
}

/// The membership table: built in, plus what `--app-table` adds.
#[derive(Clone, Debug, Default)]
pub struct AppCatalog {
    entries: HashMap<Guid, Entry>,
    /// Where the user's rows came from, for reasons.
    user_table: Option<String>,
}

/// Why an app is or is not a member: the verdict and a phrase for reasons.
#[derive(Clone, Debug, PartialEq)]
pub struct Membership {
    pub tri: Tri,
    pub why: String,
}

impl AppCatalog {
    /// The table that ships with xtenant.
    pub fn built_in() -> &'static AppCatalog {
        static CATALOG: OnceLock<AppCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let mut c = AppCatalog::default();
            let mut r = csv::ReaderBuilder::new().comment(Some(b'#')).from_reader(BUILT_IN.as_bytes());
            for rec in r.records() {
                let rec = rec.expect("the built-in app table is valid CSV (tested)");
                let id = Guid::parse(&rec[0]).expect("the built-in app table holds GUIDs (tested)");
                let tri = |v: &str| match v {
                    "yes" => Tri::Yes,
                    "no" => Tri::No,
                    _ => Tri::Unknown,
                };
                c.entries.insert(
                    id,
                    Entry {
                        name: rec[1].to_string(),
                        office365: tri(&rec[2]),
                        microsoft: tri(&rec[3]),
                        source: rec[4].to_string(),
                    },
                );
            }
            c
        })
    }

    /// The built-in table with the rows of a `--app-table` file on top: CSV
    /// `keyword,app_id` (a header line is optional), the keyword `Office365`
    /// (a member of both keywords), `AllMicrosoftApps` (a Microsoft app
    /// outside Office 365) or `None` (not a Microsoft app).
    pub fn with_user_table(path: &Path) -> Result<AppCatalog> {
        let text = crate::files::read_text(path)?;
        let mut c = AppCatalog::built_in().clone();
        let file = path.display().to_string();
        c.user_table = Some(file.clone());
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .trim(csv::Trim::All)
            .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
        for (i, rec) in r.records().enumerate() {
            let rec = rec.with_context(|| format!("{file}: line {}", i + 1))?;
            let line = rec.position().map_or(i as u64 + 1, |p| p.line());
            let (keyword, id) = (rec.get(0).unwrap_or(""), rec.get(1).unwrap_or(""));
            if keyword.is_empty() && id.is_empty() {
                continue;
            }
            if i == 0 && keyword.eq_ignore_ascii_case("keyword") {
                continue; // the header
            }
            let Some(app) = Guid::parse(id) else {
                bail!("{file}: line {line}: field `app_id`: `{id}` is not an app id (GUID)");
            };
            let (office365, microsoft) = match keyword.to_ascii_lowercase().as_str() {
                "office365" => (Tri::Yes, Tri::Yes),
                "allmicrosoftapps" => (Tri::No, Tri::Yes),
                "none" => (Tri::No, Tri::No),
                _ => bail!(
                    "{file}: line {line}: field `keyword`: `{keyword}` is not Office365, AllMicrosoftApps or None"
                ),
            };
            let name = c.entries.get(&app).map(|e| e.name.clone()).unwrap_or_default();
            c.entries.insert(app, Entry { name, office365, microsoft, source: file.clone() });
        }
        Ok(c)
    }

    /// A Microsoft app's name, for reasons and warnings.
    pub fn name(&self, app: &str) -> Option<&str> {
        let e = self.entries.get(&Guid::parse(app)?)?;
        (!e.name.is_empty()).then_some(e.name.as_str())
    }

    fn table(&self, e: &Entry) -> String {
        match e.source.as_str() {
            "learn" | "graph" => ["table ", TABLE_VERSION, ", source ", &e.source].concat(),
            file => ["--app-table ", file].concat(),
        }
    }

    /// Whether `app`, owned by `owner` when the export says, is a member of
    /// `keyword`.
    pub fn member(&self, keyword: Keyword, app: &str, owner: Option<Guid>) -> Membership {
        let label = |name: &str| if name.is_empty() { app.to_string() } else { format!("{name} {app}") };
        let guid = Guid::parse(app);
        if let Some(e) = guid.and_then(|g| self.entries.get(&g)) {
            let tri = match keyword {
                Keyword::Office365 => e.office365,
                Keyword::AllMicrosoftApps => e.microsoft,
            };
            let why = match tri {
                // Every row of an app a keyword covers says this: joined,
                // not `format!`ted (three `format!`s a row were 3% of
                // replaying the admin center's export).
                Tri::Yes => {
                    let gap = if e.name.is_empty() { "" } else { " " };
                    [&e.name, gap, app, " (", &self.table(e), ")"].concat()
                }
                Tri::No => format!("{} is not in {keyword:?} ({})", label(&e.name), self.table(e)),
                Tri::Unknown => format!(
                    "{} is a Microsoft app owned by a tenant other than Microsoft Services; whether {keyword:?} covers it is not documented (say so with --app-table)",
                    label(&e.name)
                ),
            };
            return Membership { tri, why };
        }
        let supply = "add it to an --app-table file (CSV keyword,app_id) to decide";
        match owner {
            Some(o) if o == MICROSOFT_SERVICES_TENANT && keyword == Keyword::AllMicrosoftApps => Membership {
                tri: Tri::Yes,
                why: format!("{app} is owned by Microsoft Services ({o}), the owner of Microsoft's first-party apps"),
            },
            Some(o) if o == MICROSOFT_SERVICES_TENANT || o == MICROSOFT_TENANT => Membership {
                tri: Tri::Unknown,
                why: format!(
                    "{app} is a Microsoft app (owner tenant {o}) that the {keyword:?} table {TABLE_VERSION} does not list; {supply}"
                ),
            },
            Some(o) => Membership {
                tri: Tri::No,
                why: format!("{app} is owned by tenant {o}, not Microsoft, so it is in no Microsoft app group"),
            },
            None => Membership {
                tri: Tri::Unknown,
                why: format!(
                    "{app} is not in the {keyword:?} table {TABLE_VERSION} and the export does not name its owner tenant (appOwnerTenantId / resourceOwnerTenantId: export from the Graph beta endpoint or Log Analytics), or {supply}"
                ),
            },
        }
    }
}

/// Apps Microsoft recommends keeping allowed when blocking: encrypted mail
/// (Rights Management), My Apps (App Access Panel) and Terms of Use.
pub const RECOMMENDED_ALLOWED: &[(&str, &str)] = &[
    ("00000012-0000-0000-c000-000000000000", "Microsoft Rights Management Services (encrypted email)"),
    ("0000000c-0000-0000-c000-000000000000", "Microsoft App Access Panel (My Apps)"),
    ("d52792f4-ba38-424d-8140-ada5b883f293", "AAD Terms Of Use"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<csv::StringRecord> {
        csv::ReaderBuilder::new()
            .comment(Some(b'#'))
            .from_reader(BUILT_IN.as_bytes())
            .records()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn the_built_in_table_is_versioned_and_names_its_sources() {
        for want in [
            TABLE_VERSION,
            "reference-office-365-application-contents",
            "verify-first-party-apps-sign-in",
            "merill/microsoft-info",
        ] {
            assert!(BUILT_IN.contains(want), "{want}");
        }
        let mut seen = std::collections::HashSet::new();
        for r in rows() {
            assert_eq!(r.len(), 5, "{r:?}");
            assert!(Guid::parse(&r[0]).is_some(), "{r:?}");
            assert!(seen.insert(r[0].to_string()), "{} twice", &r[0]);
            assert!(matches!(&r[2], "yes" | "no") && matches!(&r[3], "yes" | "unknown"), "{r:?}");
            assert!(matches!(&r[4], "learn" | "graph"), "{r:?}");
        }
        assert!(seen.len() > 600);
    }

    /// One check per app the table lists as an Office 365 member: each is a
    /// member of both keywords, whatever owner the sign-in names.
    #[test]
    fn every_listed_office365_app_is_a_member_of_both_keywords() {
        let c = AppCatalog::built_in();
        let members: Vec<_> = rows().into_iter().filter(|r| &r[2] == "yes").collect();
        assert!(members.len() >= 60, "{}", members.len());
        for r in members {
            for owner in [None, Some(MICROSOFT_SERVICES_TENANT), Some(Guid(7))] {
                for k in [Keyword::Office365, Keyword::AllMicrosoftApps] {
                    let m = c.member(k, &r[0].to_uppercase(), owner);
                    assert_eq!(m.tri, Tri::Yes, "{} ({}) {k:?}: {}", &r[1], &r[0], m.why);
                }
            }
        }
    }

    /// A member's reason names the app and where the table says so, as
    /// `format!` wrote it: for every listed member, in the case the log
    /// gives, and for an entry without a name from an `--app-table` file.
    #[test]
    fn a_member_s_reason_is_its_name_id_and_table() {
        let c = AppCatalog::built_in();
        for r in rows().into_iter().filter(|r| &r[2] == "yes") {
            let app = r[0].to_uppercase();
            let want = format!("{} {app} (table {TABLE_VERSION}, source {})", &r[1], &r[4]);
            assert_eq!(c.member(Keyword::Office365, &app, None).why, want);
        }
        let e = Entry {
            name: String::new(),
            office365: Tri::Yes,
            microsoft: Tri::Yes,
            source: "apps.csv".into(),
        };
        let mut c = AppCatalog::default();
        c.entries.insert(Guid(7), e);
        let app = Guid(7).to_string();
        assert_eq!(c.member(Keyword::Office365, &app, None).why, format!("{app} (--app-table apps.csv)"));
    }

    #[test]
    fn the_apps_admins_ask_about_are_office365_members() {
        let c = AppCatalog::built_in();
        for (id, name) in [
            ("00000006-0000-0ff1-ce00-000000000000", "Office 365 portal"),
            ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office client"),
            ("ab9b8c07-8f02-4f72-87fa-80105867a763", "OneDrive sync"),
            ("09abbdfd-ed23-44ee-a2d9-a627aa1c90f3", "Planner (ProjectWorkManagement)"),
            ("00000005-0000-0ff1-ce00-000000000000", "Viva Engage"),
            ("c9a559d2-7aab-4f13-a6ed-e7e9c52aec87", "Forms"),
            ("cf53fce8-def6-4aeb-8d30-b158e7b1cf83", "Stream"),
            ("00000002-0000-0ff1-ce00-000000000000", "Exchange Online"),
            ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Teams"),
        ] {
            assert_eq!(c.member(Keyword::Office365, id, None).tri, Tri::Yes, "{name}");
        }
    }

    #[test]
    fn listed_microsoft_apps_outside_the_group_are_not_office365() {
        let c = AppCatalog::built_in();
        let portal = "c44b4083-3bb0-49c1-b47d-974e53cbdf3c";
        assert_eq!(c.member(Keyword::Office365, portal, None).tri, Tri::No);
        assert_eq!(c.member(Keyword::AllMicrosoftApps, portal, None).tri, Tri::Yes);
        let explorer = "de8bc8b5-d9f9-48b1-a8ad-b748da725064";
        assert_eq!(c.member(Keyword::AllMicrosoftApps, explorer, None).tri, Tri::Unknown);
    }

    #[test]
    fn unlisted_apps_are_decided_by_their_owner_or_unknown() {
        let c = AppCatalog::built_in();
        let app = "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8";
        let partner = Guid(0x1234);
        for k in [Keyword::Office365, Keyword::AllMicrosoftApps] {
            assert_eq!(c.member(k, app, Some(partner)).tri, Tri::No);
            let m = c.member(k, app, None);
            assert_eq!(m.tri, Tri::Unknown);
            assert!(m.why.contains("--app-table") && m.why.contains("appOwnerTenantId"), "{}", m.why);
        }
        assert_eq!(c.member(Keyword::AllMicrosoftApps, app, Some(MICROSOFT_SERVICES_TENANT)).tri, Tri::Yes);
        let m = c.member(Keyword::Office365, app, Some(MICROSOFT_SERVICES_TENANT));
        assert_eq!(m.tri, Tri::Unknown);
        assert!(m.why.contains("--app-table"), "{}", m.why);
        assert_eq!(c.member(Keyword::AllMicrosoftApps, app, Some(MICROSOFT_TENANT)).tri, Tri::Unknown);
    }

    #[test]
    fn a_user_table_adds_and_overrides_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("apps.csv");
        std::fs::write(
            &p,
            "keyword,app_id\nOffice365,4E5F6A7B-8C9D-4E0F-A1B2-C3D4E5F6A7B8\nNone , c44b4083-3bb0-49c1-b47d-974e53cbdf3c\n",
        )
        .unwrap();
        let c = AppCatalog::with_user_table(&p).unwrap();
        let m = c.member(Keyword::Office365, "4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8", None);
        assert_eq!(m.tri, Tri::Yes);
        assert!(m.why.contains("--app-table"), "{}", m.why);
        assert_eq!(
            c.member(Keyword::AllMicrosoftApps, "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", None).tri,
            Tri::No
        );
        std::fs::write(&p, "Office365,not-a-guid\n").unwrap();
        let e = AppCatalog::with_user_table(&p).unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("app_id"), "{e}");
        std::fs::write(&p, "Teams,4e5f6a7b-8c9d-4e0f-a1b2-c3d4e5f6a7b8\n").unwrap();
        let e = AppCatalog::with_user_table(&p).unwrap_err().to_string();
        assert!(e.contains("`keyword`"), "{e}");
    }
}
