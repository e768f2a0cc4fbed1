//! Which app ids the keyword targets `Office365` and `AllMicrosoftApps`
//! stand for.
//!
//! Microsoft publishes the *names* of the apps in the Conditional Access
//! "Office 365" suite ("Apps included in Conditional Access Office 365 app
//! suite") but no id list, and none at all for `AllMicrosoftApps`. This is a
//! curated, versioned table: every id here was checked against at least
//! two public lists of Microsoft first-party app ids (merill/microsoft-info
//! `MicrosoftApps.json`, and community lists of first-party apps). Apps
//! outside it are treated as non-members, and every reason that relies on
//! the table names its version, so a surprising verdict can be traced.

pub const TABLE_VERSION: &str = "office365-2026.11";

/// Members of the `Office365` app group: (app id, name).
pub const OFFICE365: &[(&str, &str)] = &[
    ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
    ("00000004-0000-0ff1-ce00-000000000000", "Skype for Business Online"),
    ("00000005-0000-0ff1-ce00-000000000000", "Office 365 Yammer"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
    ("cc15fd57-2c6c-4117-a88c-83b1d56b4bbe", "Microsoft Teams Services"),
    ("5e3ce6c0-2b1f-4285-8d4b-75ee78787346", "Microsoft Teams Web Client"),
    ("c9a559d2-7aab-4f13-a6ed-e7e9c52aec87", "Microsoft Forms"),
    ("905fcf26-4eb7-48a0-9ff0-8dcc7194b5ba", "Sway"),
    ("cf53fce8-def6-4aeb-8d30-b158e7b1cf83", "Microsoft Stream Portal"),
    ("94c63fef-13a3-47bc-8074-75af8c65887a", "Office Delve"),
    ("66a88757-258c-4c72-893c-3e8bed4d6899", "Office 365 Search Service"),
    ("4765445b-32c6-49b0-83e6-1d93765276ca", "OfficeHome"),
];

/// Further Microsoft first-party apps, members of `AllMicrosoftApps` only.
pub const OTHER_MICROSOFT: &[(&str, &str)] = &[
    ("00000003-0000-0000-c000-000000000000", "Microsoft Graph"),
    ("0000000c-0000-0000-c000-000000000000", "Microsoft App Access Panel"),
    ("00000012-0000-0000-c000-000000000000", "Microsoft Rights Management Services"),
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    ("797f4846-ba00-4fd7-ba43-dac1f8f63013", "Windows Azure Service Management API"),
    ("80ccca67-54bd-44ab-8625-4b79c4dc7775", "Microsoft 365 Security and Compliance Center"),
    ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
    ("499b84ac-1321-427f-aa17-267ca6975798", "Azure DevOps"),
    ("d52792f4-ba38-424d-8140-ada5b883f293", "AAD Terms Of Use"),
];

pub fn office365_name(app_id: &str) -> Option<&'static str> {
    OFFICE365.iter().find(|(id, _)| id.eq_ignore_ascii_case(app_id)).map(|(_, n)| *n)
}

pub fn microsoft_name(app_id: &str) -> Option<&'static str> {
    office365_name(app_id)
        .or_else(|| OTHER_MICROSOFT.iter().find(|(id, _)| id.eq_ignore_ascii_case(app_id)).map(|(_, n)| *n))
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
    use crate::model::Guid;

    #[test]
    fn table_ids_are_guids_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for (id, _) in OFFICE365.iter().chain(OTHER_MICROSOFT) {
            assert!(Guid::parse(id).is_some(), "{id}");
            assert!(seen.insert(id.to_ascii_lowercase()), "{id} twice");
        }
        assert_eq!(
            microsoft_name("00000003-0000-0FF1-CE00-000000000000"),
            Some("Office 365 SharePoint Online")
        );
        assert_eq!(office365_name("c44b4083-3bb0-49c1-b47d-974e53cbdf3c"), None);
    }
}
