//! Term, termination and buffer dates (SVC-038, SVC-186 … SVC-189, SVC-230 … SVC-238).

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::calendar::{
    add_24h_days, add_hours, date_of, earliest_effective_after_notice, start_of,
};
use crate::error::{Result, SaasError};
use crate::params::Params;

/// SVC-233/314: operator termination needs notice: the effective date must be ≥ the deemed
/// delivery date + `operator_termination_notice` days, at 00:00.
pub fn check_operator_termination(
    notice_sent_at: Timestamp,
    effective: Timestamp,
    p: &Params,
    tz: &TimeZone,
) -> Result<()> {
    let earliest =
        earliest_effective_after_notice(notice_sent_at, p.operator_termination_notice_days, tz)?;
    if effective < earliest {
        return Err(SaasError::refused(
            "SVC-233",
            format!(
                "termination effective {effective} is earlier than {earliest}, the end of the notice period"
            ),
        ));
    }
    if start_of(date_of(effective, tz), tz)? != effective {
        return Err(SaasError::invalid(
            "effective",
            "terminations take effect at 00:00",
        ));
    }
    Ok(())
}

/// SVC-238/165: adverse changes and new charges need ≥ `adverse_change_notice` days; a
/// legal or regulatory deadline may shorten it if the reason is recorded.
pub fn check_adverse_change(
    notice_sent_at: Timestamp,
    effective: Timestamp,
    legal_reason: Option<&str>,
    p: &Params,
    tz: &TimeZone,
) -> Result<()> {
    let earliest =
        earliest_effective_after_notice(notice_sent_at, p.adverse_change_notice_days, tz)?;
    if effective >= earliest || legal_reason.is_some_and(|r| !r.trim().is_empty()) {
        return Ok(());
    }
    Err(SaasError::refused(
        "SVC-238",
        format!(
            "an adverse change needs {} days' notice: effective no earlier than {earliest}",
            p.adverse_change_notice_days
        ),
    ))
}

/// SVC-232: two different staff members propose and approve.
pub fn check_breach_termination(proposer: &str, approver: &str, evidence: &[String]) -> Result<()> {
    if proposer.trim().is_empty() || approver.trim().is_empty() || proposer == approver {
        return Err(SaasError::refused(
            "SVC-232",
            "termination for breach needs two different staff members",
        ));
    }
    if evidence.iter().all(|e| e.trim().is_empty()) {
        return Err(SaasError::invalid(
            "evidence",
            "at least one evidence reference is required",
        ));
    }
    Ok(())
}

/// SVC-038: a refusal recorded before `effective_at` ends service at `effective_at`; after
/// it, service ends at once.
pub fn refusal_end(refused_at: Timestamp, effective_at: Timestamp) -> Timestamp {
    refused_at.max(effective_at)
}

/// Why a buffer started (SVC-187).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferStart {
    /// Expiry, trial end, early termination, suspension for non-payment, refusal, or a
    /// release with the "keep" choice.
    Normal,
    /// SVC-186: release with deletion after the undo window.
    ReleaseDeleteAfterUndo,
}

/// The buffer of one tenant: when it started and the recorded purge date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    pub started_at: Timestamp,
    pub purge_at: Timestamp,
}

impl Buffer {
    /// SVC-187: purge date = start + `buffer_days` × 24 h; SVC-186: release with deletion →
    /// release + undo window.
    pub fn start(at: Timestamp, kind: BufferStart, p: &Params) -> Result<Buffer> {
        let purge_at = match kind {
            BufferStart::Normal => add_24h_days(at, p.buffer_days)?,
            BufferStart::ReleaseDeleteAfterUndo => add_hours(at, p.release_undo_window_hours)?,
        };
        Ok(Buffer {
            started_at: at,
            purge_at,
        })
    }

    /// SVC-187: a later trigger never moves the purge date, except a release with immediate
    /// deletion, which may only bring it forward.
    pub fn later_trigger(&self, at: Timestamp, kind: BufferStart, p: &Params) -> Result<Buffer> {
        match kind {
            BufferStart::Normal => Ok(*self),
            BufferStart::ReleaseDeleteAfterUndo => {
                let candidate = add_hours(at, p.release_undo_window_hours)?;
                Ok(Buffer {
                    started_at: self.started_at,
                    purge_at: self.purge_at.min(candidate),
                })
            }
        }
    }

    /// SVC-189: purge warnings 7 days and 1 day before the purge date.
    pub fn warnings(&self) -> Result<[Timestamp; 2]> {
        Ok([
            add_24h_days(self.purge_at, -7)?,
            add_24h_days(self.purge_at, -1)?,
        ])
    }
}

/// SVC-238: when a paid feature is removed during a paid term, the tenant may terminate
/// (with a SVC-234 refund) until 24:00 of the 30th day after the removal's `effective_at`.
pub fn feature_removal_termination_until(
    effective_at: Timestamp,
    tz: &TimeZone,
) -> Result<Timestamp> {
    start_of(
        crate::calendar::add_days(date_of(effective_at, tz), 31)?,
        tz,
    )
}

/// SVC-236: restriction flags set by an automatic detector expire after 72 h unless staff
/// confirm them; staff-set flags never expire by themselves.
pub fn automatic_flag_active(
    set_at: Timestamp,
    confirmed_by_staff: bool,
    now: Timestamp,
) -> Result<bool> {
    Ok(confirmed_by_staff || now < add_hours(set_at, 72)?)
}
