//! The system texts of notifications — card buttons, the voice prompt, the SMS reply hint —
//! in the account's locale (response.md RSP-293; accounts are `en-US` or `zh-CN`, 1.2).
//! Templates (§2.22) are the customer's own text and are not translated.

/// One locale's texts. Formatted texts hold `{}` (or `{code}`) where the value goes.
#[derive(Debug, PartialEq, Eq)]
pub struct Texts {
    pub acknowledge: &'static str,
    pub close: &'static str,
    pub snooze_one_click: &'static str,
    pub snooze_longer: &'static str,
    pub details: &'static str,
    /// WeCom's labels for Acknowledge and Close (RSP-311).
    pub start_processing: &'static str,
    pub close_directly: &'static str,
    /// WeCom's snooze button, which takes the duration picked above it.
    pub snooze: &'static str,
    pub snooze_for: &'static str,
    /// The button that re-renders a WeCom card (RSP-313).
    pub refresh: &'static str,
    /// The header marker of a rare incident (RSP-453).
    pub outlier: &'static str,
    /// After the incident is read in a call (RSP-282).
    pub press_one: &'static str,
    pub no_key: &'static str,
    pub key_does_nothing: &'static str,
    pub nothing_changed: &'static str,
    snoozed_until: &'static str,
    hours: &'static str,
    reply_hint: &'static str,
}

impl Texts {
    /// The card's state line part for an active snooze.
    pub fn snoozed_until(&self, when: &str) -> String {
        self.snoozed_until.replace("{}", when)
    }

    /// A snooze length of the menu.
    pub fn hours(&self, n: i64) -> String {
        self.hours.replace("{}", &n.to_string())
    }

    /// The line an incident SMS ends with.
    pub fn reply_hint(&self, code: &str) -> String {
        self.reply_hint.replace("{code}", code)
    }
}

pub const EN: Texts = Texts {
    acknowledge: "Acknowledge",
    close: "Close",
    snooze_one_click: "Snooze 2 hours",
    snooze_longer: "Snooze longer",
    details: "Details",
    start_processing: "Start processing",
    close_directly: "Close directly",
    snooze: "Snooze",
    snooze_for: "Snooze for",
    refresh: "Refresh",
    outlier: "[Outlier]",
    press_one: "Press 1 to acknowledge this incident.",
    no_key: "No key was pressed. Goodbye.",
    key_does_nothing: "That key does nothing.",
    nothing_changed: "Nothing was changed. Goodbye.",
    snoozed_until: "Snoozed until {}",
    hours: "{} hours",
    reply_hint: "Reply {code} 1 to acknowledge, {code} 2 to close.",
};

pub const ZH: Texts = Texts {
    acknowledge: "认领",
    close: "关闭",
    snooze_one_click: "暂缓 2 小时",
    snooze_longer: "暂缓更久",
    details: "详情",
    start_processing: "开始处理",
    close_directly: "直接关闭",
    snooze: "暂缓",
    snooze_for: "暂缓时长",
    refresh: "刷新",
    outlier: "[罕见]",
    press_one: "按 1 认领此故障。",
    no_key: "没有按键。再见。",
    key_does_nothing: "该按键无效。",
    nothing_changed: "未做任何更改。再见。",
    snoozed_until: "暂缓至 {}",
    hours: "{} 小时",
    reply_hint: "回复 {code} 1 认领，回复 {code} 2 关闭。",
};

/// The texts of `locale`; English for `en-US` and anything unknown.
pub fn texts(locale: &str) -> &'static Texts {
    match locale {
        "zh-CN" => &ZH,
        _ => &EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_locale_has_its_texts() {
        // spec: RSP-293
        assert_eq!(texts("en-US").acknowledge, "Acknowledge");
        assert_eq!(texts("zh-CN").acknowledge, "认领");
        assert_eq!(texts("").close, "Close");
        assert_eq!(
            texts("zh-CN").reply_hint("4821"),
            "回复 4821 1 认领，回复 4821 2 关闭。"
        );
        assert_eq!(
            texts("en-US").reply_hint("4821"),
            "Reply 4821 1 to acknowledge, 4821 2 to close."
        );
        assert_eq!(texts("zh-CN").hours(4), "4 小时");
        assert_eq!(texts("en-US").snoozed_until("x"), "Snoozed until x");
    }
}
