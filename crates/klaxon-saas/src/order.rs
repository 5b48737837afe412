//! Price list, quotes and orders (SVC-080 … SVC-084, SVC-151).

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::Serialize;

use crate::calendar::{add_24h_days, add_hours};
use crate::error::{Result, SaasError};
use crate::money::Currency;
use crate::params::Params;

/// A price-list version (SVC-080): effective from `effective_at`, unit prices with up to 4
/// decimals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceListVersion {
    pub id: String,
    pub published_at: Timestamp,
    pub effective_at: Timestamp,
    pub items: Vec<(String, Decimal)>,
}

impl PriceListVersion {
    pub fn validate(&self) -> Result<()> {
        if self.effective_at < self.published_at {
            return Err(SaasError::invalid("effective_at", "before published_at"));
        }
        for (sku, price) in &self.items {
            if price.is_sign_negative() && !price.is_zero() {
                return Err(SaasError::invalid("unit_price", format!("{sku}: negative")));
            }
            if price.normalize().scale() > 4 {
                return Err(SaasError::invalid(
                    "unit_price",
                    format!("{sku}: more than 4 decimals"),
                ));
            }
        }
        Ok(())
    }

    pub fn price(&self, sku: &str) -> Option<Decimal> {
        self.items.iter().find(|(s, _)| s == sku).map(|(_, p)| *p)
    }
}

/// SVC-081: the version in force at an instant (renewals at their payment instant, usage
/// when it occurs): the latest whose `effective_at` ≤ `at`.
pub fn in_force_at(versions: &[PriceListVersion], at: Timestamp) -> Option<&PriceListVersion> {
    versions
        .iter()
        .filter(|v| v.effective_at <= at)
        .max_by_key(|v| v.effective_at)
}

/// One quote line. `factor` carries pro-rating (remaining_days / term_days) or 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineInput {
    pub sku: String,
    pub unit_price: Decimal,
    pub quantity: Decimal,
    pub factor: Decimal,
    /// A promotion fixed on this line (SVC-151): a fraction off (0.2 = 20 %).
    pub promotion_fraction: Option<Decimal>,
    /// Or a fixed amount off this line.
    pub promotion_amount: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuoteLine {
    pub sku: String,
    pub list: Decimal,
    pub discount: Decimal,
    pub total: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub price_list_id: String,
    pub lines: Vec<QuoteLine>,
    pub total: Decimal,
}

/// SVC-082: each line computed exactly, discounted, rounded to the currency scale; the
/// quote total is the sum of the rounded lines.
pub fn quote(price_list_id: &str, lines: &[LineInput], currency: Currency) -> Result<Quote> {
    if lines.is_empty() {
        return Err(SaasError::invalid(
            "lines",
            "an order has at least one line",
        ));
    }
    let mut out = Vec::new();
    for l in lines {
        if l.quantity <= Decimal::ZERO {
            return Err(SaasError::invalid(
                "quantity",
                format!("{}: must be positive", l.sku),
            ));
        }
        if l.factor.is_sign_negative() || l.factor > Decimal::ONE {
            return Err(SaasError::invalid(
                "factor",
                format!("{}: must be within [0, 1]", l.sku),
            ));
        }
        let exact = l.unit_price * l.quantity * l.factor;
        let mut discount = Decimal::ZERO;
        if let Some(f) = l.promotion_fraction {
            if f.is_sign_negative() || f > Decimal::ONE {
                return Err(SaasError::invalid(
                    "promotion_fraction",
                    format!("{}: must be within [0, 1]", l.sku),
                ));
            }
            discount += exact * f;
        }
        if let Some(a) = l.promotion_amount {
            if a.is_sign_negative() {
                return Err(SaasError::invalid(
                    "promotion_amount",
                    format!("{}: negative", l.sku),
                ));
            }
            discount += a;
        }
        // A promotion can make a line free, never negative.
        let discount = discount.min(exact);
        let list = currency.round(exact);
        let total = currency.round(exact - discount);
        out.push(QuoteLine {
            sku: l.sku.clone(),
            list,
            discount: list - total,
            total,
        });
    }
    let total = out.iter().map(|l| l.total).sum();
    Ok(Quote {
        price_list_id: price_list_id.to_string(),
        lines: out,
        total,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    PendingPayment,
    Paid,
    Fulfilled,
    Cancelled,
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Gateway,
    BankTransfer,
    Balance,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: u64,
    pub quote: Quote,
    pub method: PaymentMethod,
    pub submitted_at: Timestamp,
    pub state: OrderState,
    pub paid_at: Option<Timestamp>,
}

/// What happened to money posted against an order (SVC-084).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentResult {
    /// True when this payment completed the order (its instant is the activation trigger).
    pub paid: bool,
    /// Surplus (overpayment) or the whole amount (underpayment): goes to the cash balance.
    pub to_cash: Decimal,
}

impl Order {
    pub fn submit(id: u64, quote: Quote, method: PaymentMethod, at: Timestamp) -> Order {
        Order {
            id,
            quote,
            method,
            submitted_at: at,
            state: OrderState::PendingPayment,
            paid_at: None,
        }
    }

    /// SVC-083: an unpaid order expires after 24 h (bank transfer: 7 days).
    pub fn expires_at(&self, p: &Params) -> Result<Timestamp> {
        match self.method {
            PaymentMethod::BankTransfer => {
                add_24h_days(self.submitted_at, p.bank_transfer_payment_window_days)
            }
            _ => add_hours(self.submitted_at, p.order_payment_window_hours),
        }
    }

    /// SVC-083: the expiry job; the frozen quote is not honoured afterwards.
    pub fn expire_if_due(&mut self, now: Timestamp, p: &Params) -> Result<bool> {
        if self.state == OrderState::PendingPayment && now >= self.expires_at(p)? {
            self.state = OrderState::Expired;
            return Ok(true);
        }
        Ok(false)
    }

    /// SVC-084: posting a payment of `amount` at `at` (the ledger posting time). Exact or
    /// overpayment pays the order, the surplus goes to cash; an underpayment leaves the
    /// order pending and the money goes to cash.
    pub fn post_payment(
        &mut self,
        at: Timestamp,
        amount: Decimal,
        p: &Params,
    ) -> Result<PaymentResult> {
        if amount <= Decimal::ZERO {
            return Err(SaasError::invalid("amount", "must be greater than 0"));
        }
        if self.state != OrderState::PendingPayment || at >= self.expires_at(p)? {
            // Money that arrives for an order no longer payable is kept as cash.
            return Ok(PaymentResult {
                paid: false,
                to_cash: amount,
            });
        }
        if amount < self.quote.total {
            return Ok(PaymentResult {
                paid: false,
                to_cash: amount,
            });
        }
        self.state = OrderState::Paid;
        self.paid_at = Some(at);
        Ok(PaymentResult {
            paid: true,
            to_cash: amount - self.quote.total,
        })
    }

    pub fn fulfil(&mut self) -> Result<()> {
        if self.state != OrderState::Paid {
            return Err(SaasError::invalid(
                "order",
                format!("order {} is not paid", self.id),
            ));
        }
        self.state = OrderState::Fulfilled;
        Ok(())
    }

    pub fn cancel(&mut self) -> Result<()> {
        if self.state != OrderState::PendingPayment {
            return Err(SaasError::invalid(
                "order",
                format!("order {} can no longer be cancelled", self.id),
            ));
        }
        self.state = OrderState::Cancelled;
        Ok(())
    }
}

/// SVC-165: a price list that puts a price on something that was free (price 0, Free
/// edition, free in trial or beta, free quota) may take effect only ≥ 30 days after the
/// deemed delivery of a notice to every tenant that used the item in the last 90 days (plus
/// a public announcement). `notices` maps tenant → when its notice was sent.
pub fn check_new_charge(
    effective_at: Timestamp,
    recent_users: &[u64],
    notices: &std::collections::BTreeMap<u64, Timestamp>,
    announced: bool,
    p: &Params,
    tz: &jiff::tz::TimeZone,
) -> Result<()> {
    if !announced {
        return Err(SaasError::refused(
            "SVC-165",
            "a public announcement is required",
        ));
    }
    for tenant in recent_users {
        let Some(sent) = notices.get(tenant) else {
            return Err(SaasError::refused(
                "SVC-165",
                format!("tenant {tenant} used the item in the last 90 days and was not notified"),
            ));
        };
        let earliest = crate::calendar::earliest_effective_after_notice(
            *sent,
            p.adverse_change_notice_days,
            tz,
        )?;
        if effective_at < earliest {
            return Err(SaasError::refused(
                "SVC-165",
                format!(
                    "tenant {tenant} was notified too recently: effective no earlier than {earliest}"
                ),
            ));
        }
    }
    Ok(())
}
