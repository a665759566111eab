use std::path::Path;

use base64::Engine;

use super::*;
use crate::configuration::Config;

fn ca_pem() -> String {
    let mut params = rcgen::CertificateParams::default();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().pem()
}

fn client_pair() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::default().self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn build(vars: &[(&str, String)]) -> Result<Config, String> {
    let env = vars.iter().map(|(k, v)| (k.to_string(), v.clone()));
    Config::build(None, env).map_err(|e| e.to_string())
}

fn with_url(vars: &[(&str, String)]) -> Result<Config, String> {
    let mut all = vec![("DECKHAND_KUBERNETES__URL", "https://10.0.0.1:6443".to_owned())];
    all.extend(vars.iter().cloned());
    build(&all)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn assert_names(result: Result<Config, String>, key: &str, says: &str) {
    let e = result.err().unwrap_or_else(|| panic!("{key}: expected an error"));
    assert!(e.contains(&format!("`{key}`")) && e.contains(says), "{e}");
}

#[test]
fn good_credentials_load() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = client_pair();
    let c = with_url(&[
        ("DECKHAND_KUBERNETES__CA_FILE", write(dir.path(), "ca.crt", &ca_pem())),
        (
            "DECKHAND_KUBERNETES__TOKEN_FILE",
            write(dir.path(), "token", "abc.def\n"),
        ),
        (
            "DECKHAND_KUBERNETES__CLIENT_CERT_FILE",
            write(dir.path(), "c.crt", &cert),
        ),
        ("DECKHAND_KUBERNETES__CLIENT_KEY_FILE", write(dir.path(), "c.key", &key)),
    ])
    .unwrap();
    let creds = Credentials::read(&c.kubernetes).unwrap();
    let mut config = kube::Config::new("https://10.0.0.1:6443".parse().unwrap());
    let token = creds.apply(&mut config).expect("a token layer");
    assert_eq!(config.root_cert.as_ref().map(Vec::len), Some(1));
    assert!(config.auth_info.client_certificate.is_some() && config.auth_info.client_key.is_some());
    assert!(config.auth_info.token.is_none() && config.auth_info.token_file.is_none());
    assert_eq!(token.file.header(), "Bearer abc.def");
    assert!(token.file.header().is_sensitive());
    // ca_data: PEM text and base64 of PEM (kubeconfig's certificate-authority-data).
    let pem = ca_pem();
    for data in [pem.clone(), base64::engine::general_purpose::STANDARD.encode(&pem)] {
        let c = with_url(&[("DECKHAND_KUBERNETES__CA_DATA", data)]).unwrap();
        let creds = Credentials::read(&c.kubernetes).unwrap();
        assert_eq!(creds.root_certs.map(|c| c.len()), Some(1));
    }
}

#[test]
fn bad_credentials_name_the_key_and_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let ca = write(dir.path(), "ca.crt", &ca_pem());
    let (cert, key) = client_pair();
    let cert = write(dir.path(), "c.crt", &cert);
    let key = write(dir.path(), "c.key", &key);
    let missing = dir.path().join("nope").display().to_string();

    assert_names(
        build(&[("DECKHAND_KUBERNETES__TOKEN_FILE", missing.clone())]),
        "kubernetes.token_file",
        "applies to kubernetes.url, which is empty",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CA_FILE", missing.clone())]),
        "kubernetes.ca_file",
        "cannot read",
    );
    assert_names(
        with_url(&[
            ("DECKHAND_KUBERNETES__CA_FILE", ca.clone()),
            ("DECKHAND_KUBERNETES__CA_DATA", ca_pem()),
        ]),
        "kubernetes.ca_file",
        "both set; keep one",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CA_FILE", write(dir.path(), "junk", "hello"))]),
        "kubernetes.ca_file",
        "is not a PEM certificate",
    );
    let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CA_FILE", write(dir.path(), "broken", broken))]),
        "kubernetes.ca_file",
        "unreadable certificate",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CA_DATA", "not pem at all!".into())]),
        "kubernetes.ca_data",
        "neither PEM",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CLIENT_CERT_FILE", cert.clone())]),
        "kubernetes.client_cert_file",
        "without kubernetes.client_key_file",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__CLIENT_KEY_FILE", key.clone())]),
        "kubernetes.client_key_file",
        "without kubernetes.client_cert_file",
    );
    assert_names(
        with_url(&[
            ("DECKHAND_KUBERNETES__CLIENT_CERT_FILE", cert.clone()),
            ("DECKHAND_KUBERNETES__CLIENT_KEY_FILE", ca.clone()),
        ]),
        "kubernetes.client_key_file",
        "holds no PEM private key",
    );
    assert_names(
        with_url(&[
            ("DECKHAND_KUBERNETES__CLIENT_CERT_FILE", key.clone()),
            ("DECKHAND_KUBERNETES__CLIENT_KEY_FILE", key.clone()),
        ]),
        "kubernetes.client_cert_file",
        "is not a PEM certificate",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__TOKEN_FILE", write(dir.path(), "empty", " \n"))]),
        "kubernetes.token_file",
        "is empty",
    );
    assert_names(
        with_url(&[("DECKHAND_KUBERNETES__TOKEN_FILE", missing)]),
        "kubernetes.token_file",
        "cannot read",
    );
}

#[test]
fn the_token_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "s3cr3t-token-value").unwrap();
    let layer = BearerFromFile {
        file: Arc::new(TokenFile::open(&path).unwrap()),
    };
    let shown = format!("{:?} {layer:?}", layer.file);
    assert!(!shown.contains("s3cr3t"), "{shown}");
    let e = TokenFile::open(&dir.path().join("gone")).unwrap_err().to_string();
    assert!(e.contains("cannot read"), "{e}");
}

#[test]
fn the_token_file_is_reread_when_it_changes_and_kept_when_it_vanishes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "one").unwrap();
    let file = TokenFile::open(&path).unwrap();
    assert_eq!(file.header(), "Bearer one");
    // Rotated by moving a new file over it (as the kubelet does).
    std::fs::write(dir.path().join("next"), "two").unwrap();
    std::fs::rename(dir.path().join("next"), &path).unwrap();
    assert_eq!(file.header(), "Bearer two");
    // Rewritten in place with a longer token.
    std::fs::write(&path, "three").unwrap();
    assert_eq!(file.header(), "Bearer three");
    // Gone or emptied mid-rotation: the last token stays.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(file.header(), "Bearer three");
    std::fs::write(&path, "").unwrap();
    assert_eq!(file.header(), "Bearer three");
    // After a 401 it is read again even if it looks the same.
    std::fs::write(&path, "four").unwrap();
    file.header();
    {
        let mut state = file.state.lock().unwrap();
        state.header = HeaderValue::from_static("Bearer outdated");
    }
    assert_eq!(file.header(), "Bearer outdated", "unchanged file: no re-read");
    file.unauthorized();
    assert_eq!(file.header(), "Bearer four");
}
