//! Regions (service-agreement.md §14, SVC-210 … SVC-215): a deployment serves one region and
//! knows the others by id, name and base URL. A tenant is created in the region the
//! registrant picks and stays there; a registration for another region is answered with
//! that region's address and nothing of it is kept here (SVC-211, SVC-213). Pure.

use crate::error::{Result, SaasError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub id: String,
    pub name: String,
    /// Where that region's console and API are served, without a trailing slash.
    pub base_url: String,
}

/// The deployment's own region and the other regions it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regions {
    own: Region,
    others: Vec<Region>,
}

/// Where a registration for a region goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// This deployment's region: register here.
    Here(&'a Region),
    /// Another region: register there, at its own address.
    Elsewhere(&'a Region),
}

fn check_id(field: &'static str, id: &str) -> Result<()> {
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(SaasError::invalid(
            field,
            format!("{id:?}: a region id is 1 to 64 lower-case letters, digits and '-'"),
        ));
    }
    Ok(())
}

fn check_url(field: &'static str, url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.chars().any(char::is_whitespace) => Ok(()),
        _ => Err(SaasError::invalid(
            field,
            format!("{url:?}: an http:// or https:// address is required"),
        )),
    }
}

impl Regions {
    /// SVC-210: `own` is the region this deployment serves; `known` lists every region of
    /// the operator (the own one may be among them, to give it a name and address). Ids are
    /// unique; every other region needs its base URL, since registrations are sent there.
    pub fn new(own: Region, known: Vec<Region>) -> Result<Regions> {
        let mut own = own;
        check_id("region", &own.id)?;
        let mut others: Vec<Region> = Vec::new();
        for mut r in known {
            r.id = r.id.trim().to_string();
            r.base_url = r.base_url.trim().trim_end_matches('/').to_string();
            check_id("regions.id", &r.id)?;
            if r.id == own.id {
                if own.name.is_empty() {
                    own.name = r.name.clone();
                }
                if own.base_url.is_empty() {
                    own.base_url = r.base_url.clone();
                }
                continue;
            }
            check_url("regions.base_url", &r.base_url)?;
            if others.iter().any(|o| o.id == r.id) {
                return Err(SaasError::invalid(
                    "regions.id",
                    format!("{:?} is listed twice", r.id),
                ));
            }
            if r.name.trim().is_empty() {
                r.name = r.id.clone();
            }
            others.push(r);
        }
        if own.name.trim().is_empty() {
            own.name = own.id.clone();
        }
        Ok(Regions { own, others })
    }

    pub fn own(&self) -> &Region {
        &self.own
    }

    /// Every region, this one first: what the registration form offers.
    pub fn all(&self) -> impl Iterator<Item = &Region> {
        std::iter::once(&self.own).chain(self.others.iter())
    }

    /// SVC-210/211: where a registration for `id` is served. An unknown id names the field
    /// and the regions there are.
    pub fn route(&self, id: &str) -> Result<Route<'_>> {
        let id = id.trim();
        if id == self.own.id {
            return Ok(Route::Here(&self.own));
        }
        if let Some(r) = self.others.iter().find(|r| r.id == id) {
            return Ok(Route::Elsewhere(r));
        }
        let ids: Vec<&str> = self.all().map(|r| r.id.as_str()).collect();
        Err(SaasError::invalid(
            "region",
            format!("unknown region {id:?} (regions: {})", ids.join(", ")),
        ))
    }
}

/// SVC-210/215: a tenant's region is fixed at creation. Moving is refused; the only ways are
/// an export and a new tenant in the other region, or a staff-assisted migration with the
/// owner's consent.
pub fn check_region_change(current: &str, requested: &str) -> Result<()> {
    if current == requested {
        return Ok(());
    }
    Err(SaasError::refused(
        "SVC-215",
        format!(
            "a tenant stays in its region ({current}); to move to {requested}, export the data and register a new tenant there"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(id: &str, url: &str) -> Region {
        Region {
            id: id.into(),
            name: String::new(),
            base_url: url.into(),
        }
    }

    #[test]
    fn registrations_for_other_regions_go_to_their_address() {
        // spec: SVC-210, SVC-211
        let regions = Regions::new(
            r("cn-north", ""),
            vec![
                r("cn-north", "https://cn.example.com/"),
                r("eu-west", "https://eu.example.com/"),
            ],
        )
        .unwrap();
        assert_eq!(regions.own().base_url, "https://cn.example.com");
        assert!(matches!(regions.route("cn-north").unwrap(), Route::Here(_)));
        match regions.route("eu-west").unwrap() {
            Route::Elsewhere(e) => {
                assert_eq!(e.base_url, "https://eu.example.com");
                assert_eq!(e.name, "eu-west");
            }
            other => panic!("{other:?}"),
        }
        let err = regions.route("us-east").unwrap_err();
        assert!(err.to_string().contains("cn-north, eu-west"), "{err}");
    }

    #[test]
    fn bad_region_lists_are_refused() {
        assert!(Regions::new(r("cn-north", ""), vec![r("eu-west", "eu.example.com")]).is_err());
        assert!(Regions::new(r("CN", ""), vec![]).is_err());
        assert!(
            Regions::new(
                r("cn-north", ""),
                vec![
                    r("eu-west", "https://eu.example.com"),
                    r("eu-west", "https://eu2.example.com")
                ]
            )
            .is_err()
        );
    }

    #[test]
    fn a_tenant_keeps_its_region() {
        // spec: SVC-210, SVC-215
        assert!(check_region_change("cn-north", "cn-north").is_ok());
        let err = check_region_change("cn-north", "eu-west").unwrap_err();
        assert!(err.to_string().contains("SVC-215"), "{err}");
    }
}
