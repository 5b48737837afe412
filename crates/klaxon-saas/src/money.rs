//! Money per §0.4: fixed-point decimals, never floats; one rounding, half away from zero,
//! only where an amount is posted, shown as a payable total, or paid out.

use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::error::{Result, SaasError};

/// A billing currency and its minor unit. A tenant has exactly one, fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Currency {
    pub code: &'static str,
    /// Decimals of the minor unit (CNY: 2).
    pub scale: u32,
}

impl Currency {
    pub const CNY: Currency = Currency {
        code: "CNY",
        scale: 2,
    };
    pub const USD: Currency = Currency {
        code: "USD",
        scale: 2,
    };
    pub const JPY: Currency = Currency {
        code: "JPY",
        scale: 0,
    };

    /// Rounds an exact intermediate result to this currency's minor unit (half-up).
    pub fn round(&self, exact: Decimal) -> Decimal {
        round_half_up(exact, self.scale)
    }

    /// Accepts an amount that is about to be posted: it must be ≥ 0 and already on the
    /// minor-unit grid (the caller rounds exactly once; the ledger never rounds silently).
    pub fn check_posted(&self, field: &'static str, amount: Decimal) -> Result<Decimal> {
        if amount.is_sign_negative() && !amount.is_zero() {
            return Err(SaasError::invalid(field, format!("{amount} is negative")));
        }
        if amount.normalize().scale() > self.scale {
            return Err(SaasError::invalid(
                field,
                format!(
                    "{amount} has more than {} decimals for {}",
                    self.scale, self.code
                ),
            ));
        }
        Ok(amount)
    }

    /// Formats an amount the way APIs carry it: a decimal string with exactly the minor-unit
    /// number of decimals, e.g. `"1990.00"`.
    /// A negative amount that rounds to zero prints as zero, never `-0.00`.
    pub fn format(&self, amount: Decimal) -> String {
        let mut r = self.round(amount);
        if r.is_zero() {
            r.set_sign_positive(true);
        }
        r.rescale(self.scale);
        r.to_string()
    }
}

/// Half away from zero ("half-up"); banker's rounding is never used. 6.965 → 6.97.
pub fn round_half_up(exact: Decimal, dp: u32) -> Decimal {
    exact.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

/// Parses an amount or rate given as a decimal string (`"1990.00"`, `"0.0005"`). Exponents
/// and anything that is not a plain decimal are refused, so a float never sneaks in.
pub fn parse_decimal(field: &'static str, text: &str) -> Result<Decimal> {
    let t = text.trim();
    let plain = !t.is_empty()
        && t.chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || c == '.' || (i == 0 && c == '-'));
    if !plain {
        return Err(SaasError::invalid(
            field,
            format!("{text:?} is not a plain decimal string"),
        ));
    }
    Decimal::from_str(t).map_err(|e| SaasError::invalid(field, format!("{text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::dec;

    #[test]
    fn half_up_not_bankers() {
        // spec: SVC-133 (§0.4 example 0.995 × 7 = 6.965 → 6.97)
        assert_eq!(Currency::CNY.round(dec!(0.995) * dec!(7)), dec!(6.97));
        assert_eq!(round_half_up(dec!(2.5), 0), dec!(3));
        assert_eq!(round_half_up(dec!(-2.5), 0), dec!(-3));
        assert_eq!(round_half_up(dec!(0.125), 2), dec!(0.13));
    }

    #[test]
    fn posted_amounts_must_be_on_the_grid() {
        assert!(Currency::CNY.check_posted("amount", dec!(1.005)).is_err());
        assert!(Currency::CNY.check_posted("amount", dec!(-1)).is_err());
        assert_eq!(
            Currency::CNY.check_posted("amount", dec!(1.500)),
            Ok(dec!(1.500))
        );
        assert!(Currency::JPY.check_posted("amount", dec!(1.5)).is_err());
    }

    #[test]
    fn apis_carry_decimal_strings() {
        assert_eq!(Currency::CNY.format(dec!(1990)), "1990.00");
        assert_eq!(parse_decimal("rate", "0.0005"), Ok(dec!(0.0005)));
        let err = parse_decimal("amount", "1e3").unwrap_err();
        assert!(err.to_string().contains("amount"));
        assert!(parse_decimal("amount", "").is_err());
    }

    #[test]
    fn a_negative_amount_that_rounds_to_zero_prints_as_zero() {
        // spec: SVC-085 (§0.4: amounts are carried as decimal strings on the minor unit)
        assert_eq!(Currency::CNY.format(dec!(-0.004)), "0.00");
        assert_eq!(Currency::CNY.format(dec!(-0.00)), "0.00");
        assert_eq!(Currency::JPY.format(dec!(-0.4)), "0");
        assert_eq!(Currency::CNY.format(dec!(-0.005)), "-0.01");
        assert_eq!(Currency::CNY.format(dec!(-12.345)), "-12.35");
    }
}
