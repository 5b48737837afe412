#![allow(dead_code, clippy::unwrap_used)]
//! Shared helpers: all examples are in the operator's billing time zone.

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;
use klaxon_saas::book::Book;
use klaxon_saas::money::Currency;
use klaxon_saas::overdue::PenaltyTerms;
use klaxon_saas::params::Params;

pub fn tz() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap()
}

pub fn at(y: i16, m: i8, d: i8, h: i8, mi: i8) -> Timestamp {
    date(y, m, d)
        .at(h, mi, 0, 0)
        .to_zoned_datetime(tz())
        .unwrap()
        .timestamp()
}

pub fn day(y: i16, m: i8, d: i8) -> Date {
    date(y, m, d)
}

pub fn book() -> Book {
    let p = Params::cloud_defaults();
    Book::new(
        Currency::CNY,
        tz(),
        PenaltyTerms::from_params(&p),
        p.bonus_validity_months,
    )
    .unwrap()
}
