//! Authentication over TCP and TLS: scram-sha-256 with channel binding, md5,
//! client certificates, and passwords from PGPASSWORD, the password file and
//! service files, with libpq's precedence.

use super::pki::set_mode;
use super::servers::{self, APP_PASSWORD, MD5_PASSWORD};
use super::{refused, session};

#[test]
fn scram_with_channel_binding_and_md5() {
    let srv = servers::tls();
    // SCRAM-SHA-256-PLUS: channel_binding=require fails unless the server
    // used the TLS channel binding.
    let scram = srv.conn("app", "postgres", &format!("password={APP_PASSWORD} channel_binding=require"));
    assert_eq!(session(&scram, &[]).unwrap().user, "app");
    let md5 = srv.conn("md5_user", "postgres", &format!("password={MD5_PASSWORD}"));
    assert_eq!(session(&md5, &[]).unwrap().user, "md5_user");
    // md5 has no channel binding.
    refused(&format!("{md5} channel_binding=require"), &[], &["channel binding"]);
    // Wrong passwords: the server's refusal, never the password tried.
    let e = refused(
        &srv.conn("app", "postgres", "password=not-the-password-9"),
        &[],
        &["password authentication failed for user \"app\""],
    );
    assert!(!e.contains("not-the-password-9"), "{e}");
    let e = refused(
        &srv.conn("md5_user", "postgres", "password=wrong-md5-pw-2"),
        &[],
        &["password authentication failed"],
    );
    assert!(!e.contains("wrong-md5-pw-2"), "{e}");
    // No password at all: where one can be given.
    refused(&srv.conn("app", "postgres", ""), &[], &["password", "PGPASSWORD", ".pgpass"]);
}

#[test]
fn client_certificate_authentication() {
    let srv = servers::tls();
    let pair = srv.pki.client("cert_user");
    let cert = srv.pki.write("cert_user.crt", &pair.cert);
    let key = srv.pki.write("cert_user.key", &pair.key);
    let root = srv.pki.path("root.crt");
    let base = srv.conn(
        "cert_user",
        "postgres",
        &format!("sslmode=verify-full sslrootcert={}", root.display()),
    );
    let with_cert = format!("{base} sslcert={} sslkey={}", cert.display(), key.display());
    assert_eq!(session(&with_cert, &[]).unwrap().user, "cert_user");
    // PGSSLCERT / PGSSLKEY, and the default ~/.postgresql/postgresql.{crt,key}.
    let env = [("PGSSLCERT", cert.to_str().unwrap()), ("PGSSLKEY", key.to_str().unwrap())];
    assert_eq!(session(&base, &env).unwrap().user, "cert_user");
    let home = tempfile::tempdir().unwrap();
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    std::fs::copy(&cert, dot.join("postgresql.crt")).unwrap();
    std::fs::copy(&key, dot.join("postgresql.key")).unwrap();
    set_mode(&dot.join("postgresql.key"), 0o600);
    assert_eq!(
        session(&base, &[("HOME", home.path().to_str().unwrap())]).unwrap().user,
        "cert_user"
    );
    // Without a certificate the server refuses (cert authentication).
    refused(&base, &[], &["certificate"]);
    // A certificate of another user is refused by the server.
    let other = srv.pki.client("somebody_else");
    let (oc, ok) = (srv.pki.write("else.crt", &other.cert), srv.pki.write("else.key", &other.key));
    refused(
        &format!("{base} sslcert={} sslkey={}", oc.display(), ok.display()),
        &[],
        &["certificate authentication failed for user \"cert_user\""],
    );
    // A key others can read is refused before connecting, as libpq does.
    let open = srv.pki.write("open.key", &pair.key);
    set_mode(&open, 0o644);
    refused(
        &format!("{base} sslcert={} sslkey={}", cert.display(), open.display()),
        &[],
        &["group or world access"],
    );
}

#[test]
fn passwords_from_pgpassword_the_password_file_and_a_service() {
    let srv = servers::tls();
    let no_pw = srv.conn("app", "postgres", "");
    // PGPASSWORD; an explicit password wins over it.
    assert!(session(&no_pw, &[("PGPASSWORD", APP_PASSWORD)]).is_ok());
    assert!(session(&format!("{no_pw} password={APP_PASSWORD}"), &[("PGPASSWORD", "wrong")]).is_ok());
    refused(
        &format!("{no_pw} password=wrong"),
        &[("PGPASSWORD", APP_PASSWORD)],
        &["password authentication failed"],
    );
    // ~/.pgpass with libpq's wildcards and escapes, host as written.
    let home = tempfile::tempdir().unwrap();
    let pgpass = home.path().join(".pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# strata test\nlocalhost:{}:*:md5_user:nope\nlocalhost:*:postgres:app:{APP_PASSWORD}\n",
            srv.port()
        ),
    )
    .unwrap();
    set_mode(&pgpass, 0o600);
    let h = home.path().to_str().unwrap();
    assert!(session(&no_pw, &[("HOME", h)]).is_ok());
    // PGPASSFILE names another file; PGPASSWORD wins over the file.
    let other = home.path().join("elsewhere");
    std::fs::write(&other, format!("*:*:*:app:{APP_PASSWORD}\n")).unwrap();
    set_mode(&other, 0o600);
    assert!(session(&no_pw, &[("PGPASSFILE", other.to_str().unwrap())]).is_ok());
    refused(&no_pw, &[("HOME", h), ("PGPASSWORD", "wrong")], &["password authentication failed"]);
    // A file others can read is skipped (with libpq's warning on stderr).
    set_mode(&pgpass, 0o644);
    refused(&no_pw, &[("HOME", h)], &["PGPASSWORD"]);
    // A service: its values below the string's, above the environment's.
    let services = home.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "[orbis]\nhost=localhost\nhostaddr=127.0.0.1\nport={}\nuser=app\npassword={APP_PASSWORD}\ndbname=postgres\n\
             sslmode=verify-full\nsslrootcert={}\n",
            srv.port(),
            srv.pki.path("root.crt").display()
        ),
    )
    .unwrap();
    let svc_env = [("PGSERVICEFILE", services.to_str().unwrap())];
    let s = session("service=orbis", &svc_env).unwrap();
    assert!(s.ssl && s.user == "app");
    let env_too = [
        ("PGSERVICEFILE", services.to_str().unwrap()),
        ("PGSERVICE", "orbis"),
        ("PGUSER", "md5_user"),
    ];
    assert_eq!(session("dbname=postgres", &env_too).unwrap().user, "app");
    refused(
        "service=orbis user=md5_user",
        &svc_env,
        &["password authentication failed for user \"md5_user\""],
    );
    refused("service=missing", &svc_env, &["definition of service \"missing\" not found"]);
}
