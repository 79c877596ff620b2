//! SMS through Alibaba Cloud (阿里云短信, RPC signature v1: HMAC-SHA1 over the canonicalised
//! query) or Tencent Cloud (腾讯云短信, API 3.0: TC3-HMAC-SHA256), for reps away from IM. Both
//! need an approved template: it receives the message title, a short lead summary and the link
//! (Alibaba as `${title}`, `${lead}`, `${link}`; Tencent as `{1}`, `{2}`, `{3}`).

use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use utoipa::ToSchema;

use super::channel::{Message, SendError};

/// A cloud SMS account. The access key secret is the channel's `secret`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SmsDocument {
    /// AccessKeyId (Alibaba) or SecretId (Tencent).
    pub access_key_id: String,
    /// The approved signature (签名).
    pub sign_name: String,
    /// TemplateCode (Alibaba) or TemplateId (Tencent).
    pub template: String,
    /// Tencent's SmsSdkAppId.
    #[serde(default)]
    pub app_id: Option<String>,
    /// `cn-hangzhou` (Alibaba) or `ap-guangzhou` (Tencent) when left out.
    #[serde(default)]
    pub region: Option<String>,
    /// The API address, `https://dysmsapi.aliyuncs.com` or `https://sms.tencentcloudapi.com`
    /// when left out.
    #[serde(default)]
    pub endpoint: Option<String>,
}

/// RFC 3986 percent-encoding as Alibaba's signature wants it: everything but unreserved
/// characters, space as `%20`.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                encoded.push(byte as char)
            }
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

/// The sorted, encoded query Alibaba signs.
pub fn aliyun_canonical(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Alibaba's RPC signature: base64(HMAC-SHA1(secret + "&", "GET&%2F&" + encode(canonical))).
pub fn aliyun_signature(secret: &str, canonical: &str) -> String {
    let to_sign = format!("GET&{}&{}", percent_encode("/"), percent_encode(canonical));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes())
        .unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn hmac256(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac takes any key"));
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Tencent's TC3-HMAC-SHA256 `Authorization` header for a JSON POST to `host`.
pub fn tencent_authorization(
    secret_id: &str,
    secret_key: &str,
    host: &str,
    payload: &str,
    timestamp: i64,
) -> String {
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .map(|at| at.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let canonical = format!(
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:{host}\n\ncontent-type;host\n{}",
        hex::encode(Sha256::digest(payload.as_bytes()))
    );
    let scope = format!("{date}/sms/tc3_request");
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let secret_date = hmac256(format!("TC3{secret_key}").as_bytes(), &date);
    let secret_service = hmac256(&secret_date, "sms");
    let secret_signing = hmac256(&secret_service, "tc3_request");
    let signature = hex::encode(hmac256(&secret_signing, &to_sign));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    )
}

use super::apps::failed;

/// The short lead summary an SMS carries.
fn short(message: &Message) -> String {
    let lead = message.lines.first().cloned().unwrap_or_default();
    lead.chars().take(30).collect()
}

/// Sends the message to `phones` (E.164) through the cloud the channel names.
pub async fn send(
    client: &reqwest::Client,
    kind: &str,
    sms: &SmsDocument,
    secret: &str,
    phones: &[String],
    message: &Message,
    now: i64,
) -> Result<(), SendError> {
    if phones.is_empty() {
        return Err(failed("no recipient has a mobile number"));
    }
    let link = message.link.clone().unwrap_or_default();
    if kind == "aliyun_sms" {
        let endpoint = sms
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://dysmsapi.aliyuncs.com".into());
        // Alibaba takes mainland numbers without the country code.
        let numbers: Vec<String> = phones
            .iter()
            .map(|phone| phone.strip_prefix("+86").unwrap_or(phone).to_owned())
            .collect();
        let timestamp = chrono::DateTime::from_timestamp(now, 0)
            .map(|at| at.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let params: Vec<(String, String)> = [
            ("AccessKeyId", sms.access_key_id.clone()),
            ("Action", "SendSms".into()),
            ("Format", "JSON".into()),
            ("PhoneNumbers", numbers.join(",")),
            (
                "RegionId",
                sms.region.clone().unwrap_or_else(|| "cn-hangzhou".into()),
            ),
            ("SignName", sms.sign_name.clone()),
            ("SignatureMethod", "HMAC-SHA1".into()),
            ("SignatureNonce", uuid::Uuid::now_v7().to_string()),
            ("SignatureVersion", "1.0".into()),
            ("TemplateCode", sms.template.clone()),
            (
                "TemplateParam",
                json!({"title": message.title, "lead": short(message), "link": link}).to_string(),
            ),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
        let canonical = aliyun_canonical(&params);
        let signature = aliyun_signature(secret, &canonical);
        let url = format!(
            "{}/?Signature={}&{canonical}",
            endpoint.trim_end_matches('/'),
            percent_encode(&signature)
        );
        let response = client
            .get(url)
            .send()
            .await
            .map_err(|_| failed("could not reach Alibaba Cloud SMS"))?;
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        return match answer["Code"].as_str() {
            Some("OK") => Ok(()),
            Some(code) => Err(SendError {
                rate_limited: code.contains("LIMIT_CONTROL"),
                ..failed(format!("Alibaba Cloud SMS answered {code}"))
            }),
            None => Err(failed("Alibaba Cloud SMS answered without a code")),
        };
    }
    let endpoint = sms
        .endpoint
        .clone()
        .unwrap_or_else(|| "https://sms.tencentcloudapi.com".into());
    let host = reqwest::Url::parse(&endpoint)
        .ok()
        .and_then(|url| {
            let host = url.host_str()?.to_owned();
            Some(match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .ok_or_else(|| failed("bad Tencent Cloud endpoint"))?;
    let payload = json!({
        "PhoneNumberSet": phones,
        "SmsSdkAppId": sms.app_id.clone().unwrap_or_default(),
        "SignName": sms.sign_name,
        "TemplateId": sms.template,
        "TemplateParamSet": [message.title, short(message), link],
    })
    .to_string();
    let response = client
        .post(&endpoint)
        .header("content-type", "application/json; charset=utf-8")
        .header("host", &host)
        .header("x-tc-action", "SendSms")
        .header("x-tc-timestamp", now.to_string())
        .header("x-tc-version", "2021-01-11")
        .header(
            "x-tc-region",
            sms.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
        )
        .header(
            "authorization",
            tencent_authorization(&sms.access_key_id, secret, &host, &payload, now),
        )
        .body(payload)
        .send()
        .await
        .map_err(|_| failed("could not reach Tencent Cloud SMS"))?;
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if let Some(code) = answer["Response"]["Error"]["Code"].as_str() {
        return Err(SendError {
            rate_limited: code.contains("LimitExceeded"),
            ..failed(format!("Tencent Cloud SMS answered {code}"))
        });
    }
    let statuses = answer["Response"]["SendStatusSet"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if statuses.is_empty() {
        return Err(failed("Tencent Cloud SMS answered without a status"));
    }
    match statuses
        .iter()
        .find(|status| status["Code"].as_str() != Some("Ok"))
    {
        None => Ok(()),
        Some(status) => Err(failed(format!(
            "Tencent Cloud SMS refused a number: {}",
            status["Code"].as_str().unwrap_or("?")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alibaba_encoding_follows_rfc_3986() {
        assert_eq!(percent_encode("a b*c~d/"), "a%20b%2Ac~d%2F");
        assert_eq!(percent_encode("线"), "%E7%BA%BF");
        let canonical = aliyun_canonical(&[("b".into(), "2".into()), ("a".into(), "1 2".into())]);
        assert_eq!(canonical, "a=1%202&b=2");
    }

    #[test]
    fn tencent_authorization_names_its_scope() {
        let header = tencent_authorization(
            "AKID",
            "key",
            "sms.tencentcloudapi.com",
            "{}",
            1_700_000_000,
        );
        assert!(header.starts_with("TC3-HMAC-SHA256 Credential=AKID/2023-11-14/sms/tc3_request, SignedHeaders=content-type;host, Signature="));
        assert_eq!(header.rsplit('=').next().map(str::len), Some(64));
    }
}
