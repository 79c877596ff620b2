//! Normalising contact and location fields at intake: phones to E.164 (Chinese mobiles without
//! a country code get +86), emails trimmed with a lower-case domain, provinces without their
//! 省 / 市 / 自治区 suffix, and the sales region derived from the province when not given.

/// Reads a phone number as E.164, or says why not.
pub fn phone(raw: &str) -> Result<String, String> {
    let compact: String = raw
        .chars()
        .filter(|character| !matches!(character, ' ' | '-' | '(' | ')' | '.' | '\u{3000}'))
        .collect();
    let (plus, digits) = match compact.strip_prefix('+') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, compact.clone()),
    };
    if digits.is_empty() || !digits.chars().all(|character| character.is_ascii_digit()) {
        return Err("a phone has digits, spaces, dashes and an optional leading +".to_owned());
    }
    let chinese_mobile = |number: &str| {
        number.len() == 11 && number.starts_with('1') && matches!(number.as_bytes()[1], b'3'..=b'9')
    };
    let international = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_owned()
    } else if chinese_mobile(&digits) {
        format!("86{digits}")
    } else if digits.starts_with("86") && chinese_mobile(&digits[2..]) {
        digits
    } else {
        return Err("expected a Chinese mobile (11 digits starting 13–19) or an international number starting with +".to_owned());
    };
    if let Some(national) = international.strip_prefix("86")
        && national.starts_with('1')
        && !chinese_mobile(national)
    {
        return Err("a Chinese mobile has 11 digits starting 13–19".to_owned());
    }
    if !(8..=15).contains(&international.len()) || international.starts_with('0') {
        return Err("an international number has 8 to 15 digits after the +".to_owned());
    }
    Ok(format!("+{international}"))
}

/// Checks and tidies an email address.
pub fn email(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim();
    let error = || "expected an email address such as name@example.com".to_owned();
    let (local, domain) = trimmed.rsplit_once('@').ok_or_else(error)?;
    let valid = !local.is_empty()
        && local.len() <= 64
        && trimmed.len() <= 254
        && !local.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !trimmed
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        && domain
            .chars()
            .all(|character| character.is_alphanumeric() || character == '-' || character == '.');
    if !valid {
        return Err(error());
    }
    Ok(format!("{local}@{}", domain.to_lowercase()))
}

const REGIONS: &[(&str, &[&str])] = &[
    ("华北", &["北京", "天津", "河北", "山西", "内蒙古"]),
    ("东北", &["辽宁", "吉林", "黑龙江"]),
    (
        "华东",
        &["上海", "江苏", "浙江", "安徽", "福建", "江西", "山东"],
    ),
    ("华中", &["河南", "湖北", "湖南"]),
    ("华南", &["广东", "广西", "海南"]),
    ("西南", &["重庆", "四川", "贵州", "云南", "西藏"]),
    ("西北", &["陕西", "甘肃", "青海", "宁夏", "新疆"]),
    ("港澳台", &["香港", "澳门", "台湾"]),
];

/// Every province, municipality and region name, without its suffix.
pub fn provinces() -> impl Iterator<Item = &'static str> {
    REGIONS
        .iter()
        .flat_map(|(_, provinces)| provinces.iter().copied())
}

/// `广东省` → `广东`, `广西壮族自治区` → `广西`, `上海市` → `上海`.
pub fn province(raw: &str) -> String {
    let trimmed = raw.trim();
    for (_, provinces) in REGIONS {
        for province in *provinces {
            if trimmed.starts_with(province) {
                return (*province).to_owned();
            }
        }
    }
    trimmed.to_owned()
}

/// `华东区` / `华东地区` → `华东`; other names are kept as written.
pub fn region(raw: &str) -> String {
    let trimmed = raw.trim();
    for (region, _) in REGIONS {
        if trimmed.starts_with(region) {
            return (*region).to_owned();
        }
    }
    trimmed.to_owned()
}

/// The sales region a province belongs to.
pub fn region_of_province(province: &str) -> Option<&'static str> {
    REGIONS
        .iter()
        .find(|(_, provinces)| provinces.contains(&province))
        .map(|(region, _)| *region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        for (raw, expected) in [
            ("13800138000", "+8613800138000"),
            ("138 0013 8000", "+8613800138000"),
            ("+86 138-0013-8000", "+8613800138000"),
            ("008613800138000", "+8613800138000"),
            ("8613800138000", "+8613800138000"),
            ("+1 (415) 555-0100", "+14155550100"),
            ("+44 20 7946 0958", "+442079460958"),
        ] {
            assert_eq!(phone(raw).as_deref(), Ok(expected), "{raw}");
        }
        for bad in [
            "",
            "12345",
            "abc",
            "23800138000",
            "+86 1200138000",
            "+1234",
            "+8613800138000123",
        ] {
            assert!(phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_checked_and_tidied() {
        assert_eq!(
            email(" Li.Na@Example.COM ").as_deref(),
            Ok("Li.Na@example.com")
        );
        for bad in [
            "",
            "no-at",
            "a@b",
            "a b@c.com",
            "@c.com",
            "a@.com",
            "a@c.com.",
            "a@b@c.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn provinces_map_to_regions() {
        assert_eq!(province("广东省"), "广东");
        assert_eq!(province("广西壮族自治区"), "广西");
        assert_eq!(region_of_province(&province("上海市")), Some("华东"));
        assert_eq!(region("华南地区"), "华南");
        assert_eq!(region("EMEA"), "EMEA");
    }
}
