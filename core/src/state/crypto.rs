//! Encryption of secrets in state.
//!
//! Every `{"$secret": v}` in a record is written as `{"$secret_enc": "<base64 nonce‖ciphertext>"}`
//! (XChaCha20-Poly1305). The key comes from `FABRIC_PASSPHRASE` (Argon2id with a salt kept next to
//! the state), or, for local state without a passphrase, from a generated key file
//! `.fabric/<stack>/secret.key` (mode 0600). A check value detects a wrong passphrase on load.

use crate::model::secret::SECRET_KEY;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde_json::Value;

pub const ENCRYPTED_KEY: &str = "$secret_enc";
const CHECK_PLAINTEXT: &[u8] = b"fabric-state-key-check";

/// A symmetric key for the secrets of one stack's state.
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

/// What is stored beside the state so the key can be derived again.
#[derive(serde::Serialize, serde::Deserialize, Clone, Debug)]
pub struct KeyParams {
    /// `argon2id` (passphrase) or `keyfile`.
    pub kdf: String,
    #[serde(default)]
    pub salt: String,
    /// The check plaintext encrypted with the key.
    pub check: String,
}

impl Cipher {
    pub fn from_key(key: [u8; 32]) -> Self {
        Cipher { aead: XChaCha20Poly1305::new(&key.into()) }
    }

    /// Argon2id(passphrase, salt).
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Result<Self, String> {
        let mut key = [0u8; 32];
        argon2::Argon2::default()
            .hash_password_into(passphrase.as_bytes(), salt, &mut key)
            .map_err(|e| format!("cannot derive the state key: {e}"))?;
        Ok(Cipher::from_key(key))
    }

    pub fn random_key() -> [u8; 32] {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        key
    }

    pub fn encrypt_bytes(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::rng().fill_bytes(&mut nonce);
        let ct =
            self.aead.encrypt(XNonce::from_slice(&nonce), plain).expect("XChaCha20-Poly1305 encryption cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        B64.encode(out)
    }

    pub fn decrypt_bytes(&self, encoded: &str) -> Result<Vec<u8>, String> {
        let raw = B64.decode(encoded).map_err(|e| format!("malformed encrypted value: {e}"))?;
        if raw.len() < 24 {
            return Err("malformed encrypted value: too short".into());
        }
        let (nonce, ct) = raw.split_at(24);
        self.aead
            .decrypt(XNonce::from_slice(nonce), ct)
            .map_err(|_| "cannot decrypt a secret in state: wrong key (check FABRIC_PASSPHRASE)".to_string())
    }

    /// A fresh check value for [`KeyParams::check`].
    pub fn check_value(&self) -> String {
        self.encrypt_bytes(CHECK_PLAINTEXT)
    }

    /// Whether `check` was made with this key.
    pub fn verify(&self, check: &str) -> bool {
        self.decrypt_bytes(check).is_ok_and(|p| p == CHECK_PLAINTEXT)
    }

    /// A copy of `value` with every secret encrypted.
    pub fn seal(&self, value: &Value) -> Value {
        match value {
            Value::Object(map) if crate::model::secret::is_secret(value) => {
                let plain = serde_json::to_vec(&map[SECRET_KEY]).expect("JSON values serialize");
                serde_json::json!({ ENCRYPTED_KEY: self.encrypt_bytes(&plain) })
            }
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.seal(v))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.seal(v)).collect()),
            other => other.clone(),
        }
    }

    /// The inverse of [`Cipher::seal`].
    pub fn open(&self, value: &Value) -> Result<Value, String> {
        let mut opened = value.clone();
        self.open_in_place(&mut opened)?;
        Ok(opened)
    }

    /// [`Cipher::open`] of a value this caller owns: each encrypted secret is replaced where it
    /// lies, and nothing else is copied (a 10,000-resource state is a tree of ~100,000 values).
    pub fn open_in_place(&self, value: &mut Value) -> Result<(), String> {
        match value {
            Value::Object(map) if map.len() == 1 && map.contains_key(ENCRYPTED_KEY) => {
                let enc = map[ENCRYPTED_KEY].as_str().ok_or("malformed encrypted value")?;
                let plain = self.decrypt_bytes(enc)?;
                let inner: Value = serde_json::from_slice(&plain).map_err(|e| e.to_string())?;
                *value = serde_json::json!({ SECRET_KEY: inner });
                Ok(())
            }
            Value::Object(map) => map.values_mut().try_for_each(|v| self.open_in_place(v)),
            Value::Array(items) => items.iter_mut().try_for_each(|v| self.open_in_place(v)),
            _ => Ok(()),
        }
    }
}

/// Whether a JSON value still holds a plain (unencrypted) secret anywhere.
pub fn has_plain_secret(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key(SECRET_KEY) || map.values().any(has_plain_secret),
        Value::Array(items) => items.iter().any(has_plain_secret),
        _ => false,
    }
}

pub fn encode_key(key: &[u8; 32]) -> String {
    B64.encode(key)
}

pub fn decode_key(s: &str) -> Result<[u8; 32], String> {
    let raw = B64.decode(s.trim()).map_err(|e| format!("malformed key file: {e}"))?;
    raw.try_into().map_err(|_| "malformed key file: expected 32 bytes".to_string())
}

pub fn random_salt() -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    B64.encode(salt)
}

pub fn decode_salt(s: &str) -> Result<Vec<u8>, String> {
    B64.decode(s).map_err(|e| format!("malformed salt: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn seal_hides_and_open_restores() {
        let c = Cipher::from_key(Cipher::random_key());
        let v = json!({"user": "app", "password": {"$secret": "hunter2"}, "list": [{"$secret": 7}]});
        let sealed = c.seal(&v);
        let text = sealed.to_string();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!has_plain_secret(&sealed));
        assert_eq!(c.open(&sealed).unwrap(), v);
    }

    /// A snapshot is parsed straight into a `State` and opened value by value
    /// (`State::values_mut`): every place a secret can lie must be among them.
    #[test]
    fn a_sealed_state_opens_in_place_wherever_its_secrets_lie() {
        use crate::model::Urn;
        use crate::state::{Op, Pending, Record, Retired, State};
        let c = Cipher::from_key(Cipher::random_key());
        let secret = |s: &str| json!({ "$secret": s });
        let record = |inputs: serde_json::Value, outputs: serde_json::Value| Record {
            type_name: "t".into(),
            inputs,
            outputs,
            deps: Vec::new(),
            options: Default::default(),
        };
        let urn = |n: &str| Urn::new("s", "t", n);
        let mut state = State::new("s");
        state.resources.insert(urn("a"), record(json!({"p": secret("plain-in")}), json!({"v": [secret("plain-out")]})));
        state
            .retired
            .push(Retired { urn: urn("a"), record: record(secret("plain-retired-in"), secret("plain-retired-out")) });
        state.pending.insert(
            urn("b"),
            Pending {
                op: Op::Create,
                type_name: "t".into(),
                inputs: secret("plain-pending"),
                deps: Vec::new(),
                failed: false,
            },
        );
        state.outputs.insert("o".into(), secret("plain-output"));

        let sealed = c.seal(&serde_json::to_value(&state).unwrap()).to_string();
        for plain in ["in", "out", "retired-in", "retired-out", "pending", "output"] {
            assert!(!sealed.contains(&format!("plain-{plain}")), "{plain} in {sealed}");
        }
        let mut loaded: State = serde_json::from_str(&sealed).unwrap();
        loaded.values_mut().try_for_each(|v| c.open_in_place(v)).unwrap();
        assert_eq!(loaded, state);
    }

    #[test]
    fn a_wrong_passphrase_is_detected() {
        let salt = decode_salt(&random_salt()).unwrap();
        let right = Cipher::from_passphrase("correct horse", &salt).unwrap();
        let wrong = Cipher::from_passphrase("battery staple", &salt).unwrap();
        let check = right.check_value();
        assert!(right.verify(&check));
        assert!(!wrong.verify(&check));
        let sealed = right.seal(&json!({"$secret": "x"}));
        assert!(wrong.open(&sealed).unwrap_err().contains("FABRIC_PASSPHRASE"));
    }
}
