//! Users, passwords and API keys.

use crate::fixtures::*;
use kizuna_store::{Origin, Store};

// E-mail is the identity: stored trimmed and lower-case, unique regardless
// of case; bad input is refused before anything is written.
conformance!(
    users_create_and_refuse_duplicate_email,
    |store| async move {
        let ann = store
            .create_user("  Ann@Example.COM ", " Ann ", None)
            .await?;
        assert_eq!(ann.email, "ann@example.com");
        assert_eq!(ann.name, "Ann");
        assert!(ann.active);
        let found = store.user_by_email("ANN@example.com").await?;
        assert_eq!(found.as_ref().map(|u| u.id), Some(ann.id));
        assert_eq!(store.user_by_id(ann.id).await?, Some(ann.clone()));

        let e = assert_code(
            store
                .create_user("ann@EXAMPLE.com", "Other Ann", None)
                .await,
            "already_exists",
            "a second user with the same e-mail in another case",
        );
        assert_eq!(e.status(), 409);

        assert_code(
            store.create_user("not-an-email", "X", None).await,
            "invalid_email",
            "bad e-mail",
        );
        assert_code(
            store.create_user("x@example.com", "  ", None).await,
            "invalid_name",
            "blank name",
        );
        assert_code(
            store
                .create_user("weak@example.com", "Weak", Some("short"))
                .await,
            "weak_password",
            "a 5-character password",
        );
        assert_eq!(
            store.user_by_email("weak@example.com").await?,
            None,
            "nothing was written"
        );
        assert_eq!(
            store.user_by_email("x@example.com").await?,
            None,
            "nothing was written"
        );
        Ok(())
    }
);

// Sign-in: right password accepted (e-mail in any case), wrong one and
// unknown users refused alike, a deactivated user refused (GEN-10).
conformance!(users_password_check, |store| async move {
    let u = store
        .create_user("pat@example.com", "Pat", Some("correct horse battery"))
        .await?;
    let ok = store
        .check_password("PAT@example.com", "correct horse battery")
        .await?;
    assert_eq!(ok.id, u.id);
    assert_code(
        store
            .check_password("pat@example.com", "wrong horse battery")
            .await,
        "bad_credentials",
        "wrong password",
    );
    assert_code(
        store
            .check_password("nobody@example.com", "correct horse battery")
            .await,
        "bad_credentials",
        "unknown user",
    );
    user(&store, "nopass@example.com").await?;
    assert_code(
        store.check_password("nopass@example.com", "").await,
        "bad_credentials",
        "a user without a password cannot sign in",
    );

    let off = store.set_user_active("pat@example.com", false).await?;
    assert!(!off.active);
    let e = assert_code(
        store
            .check_password("pat@example.com", "correct horse battery")
            .await,
        "user_deactivated",
        "a deactivated user's right password",
    );
    assert_eq!(e.rule, Some("GEN-10"));
    assert_code(
        store
            .check_password("pat@example.com", "wrong horse battery")
            .await,
        "bad_credentials",
        "a wrong password says nothing about the account's state",
    );
    store.set_user_active("pat@example.com", true).await?;
    store
        .check_password("pat@example.com", "correct horse battery")
        .await?;
    assert_code(
        store.set_user_active("ghost@example.com", false).await,
        "user_not_found",
        "deactivating an unknown user",
    );
    Ok(())
});

// API keys: shown once, authenticate their owner, refused once revoked;
// only the owner can revoke, and only once.
conformance!(api_keys_create_authenticate_revoke, |store| async move {
    let u = user(&store, "kim@example.com").await?;
    let other = user(&store, "lee@example.com").await?;
    let (k1, key1) = store.create_api_key(u.id).await?;
    let (k2, key2) = store.create_api_key(u.id).await?;
    assert_ne!(k1, k2);
    assert_ne!(key1, key2);
    assert!(key1.starts_with("kz_") && key1.len() > 40, "key: {key1}");

    let p = store.authenticate_key(&key1).await?;
    assert_eq!(p.user.id, u.id);
    assert_eq!(p.key_id, Some(k1));
    let p = store.authenticate_key(&format!("  {key2}\n")).await?;
    assert_eq!(p.key_id, Some(k2), "surrounding whitespace is ignored");

    assert_code(
        store.authenticate_key("kz_0000").await,
        "unauthenticated",
        "unknown key",
    );
    assert_code(
        store.authenticate_key("").await,
        "unauthenticated",
        "empty key",
    );

    assert_code(
        store.revoke_api_key(other.id, k1).await,
        "not_found",
        "another user revoking my key",
    );
    store.authenticate_key(&key1).await?;
    store.revoke_api_key(u.id, k1).await?;
    let e = assert_code(
        store.authenticate_key(&key1).await,
        "key_revoked",
        "revoked key",
    );
    assert_eq!(e.status(), 401);
    assert_code(
        store.revoke_api_key(u.id, k1).await,
        "not_found",
        "revoking twice",
    );
    assert_eq!(
        store.authenticate_key(&key2).await?.key_id,
        Some(k2),
        "the other key still works"
    );
    Ok(())
});

// GEN-10: a deactivated user's key is refused at once, naming the user;
// re-activation brings the same key back.
conformance!(
    gen_10_deactivated_users_key_refused_until_reactivated,
    |store| async move {
        let u = user(&store, "admin@example.com").await?;
        let (kid, key) = store.create_api_key(u.id).await?;
        store.set_user_active("admin@example.com", false).await?;
        let e = assert_code(
            store.authenticate_key(&key).await,
            "user_deactivated",
            "GEN-10",
        );
        assert_eq!(e.rule, Some("GEN-10"));
        assert_eq!(e.status(), 401);
        assert!(
            e.message.en.contains("admin@example.com"),
            "{}",
            e.message.en
        );
        assert!(e.fix.ja.contains("admin@example.com"), "{}", e.fix.ja);

        store.set_user_active("ADMIN@example.com", true).await?;
        let p = store.authenticate_key(&key).await?;
        assert_eq!(
            (p.user.id, p.key_id, p.user.active),
            (u.id, Some(kid), true)
        );
        Ok(())
    }
);

// The GET of a record reads the key, the membership and the record in one
// statement (on SQLite off sqlx, `reader.rs`): it finds the caller's record,
// never another org's, a deleted one or another module's; a non-member gets
// no org; a key refused alone is refused here too, at once (GEN-10); and a
// write just committed is read back.
conformance!(
    gen_10_one_read_of_key_membership_and_record,
    |store| async move {
        let w = world(&store, "owner@example.com").await?;
        let other = world(&store, "stranger@example.com").await?;
        let (_, key) = store.create_api_key(w.admin.id).await?;
        let contacts = contacts();
        let mine = create_one(
            &store,
            &w,
            &contacts,
            serde_json::json!({"Last_Name": "Sato"}),
        )
        .await?;
        let theirs = create_one(
            &store,
            &other,
            &contacts,
            serde_json::json!({"Last_Name": "Kato"}),
        )
        .await?;

        let (p, member) = store
            .authenticate_key_for_record(&key, w.org.id, "Contacts", mine.id)
            .await?;
        assert_eq!(p.user.id, w.admin.id);
        let (org, role, record) = member.expect("a member sees the org");
        assert_eq!(
            (org.id, role),
            (w.org.id, kizuna_domain::Role::Administrator)
        );
        let record = record.expect("the record");
        assert_eq!((record.id, record.version), (mine.id, mine.version));
        let fields: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(record.fields.get()).expect("stored JSON");
        assert_eq!(fields, mine.fields, "the stored values, as written");

        let (_, member) = store
            .authenticate_key_for_record(&key, w.org.id, "Contacts", theirs.id)
            .await?;
        assert!(member.expect("org").2.is_none(), "another org's record");
        let (_, member) = store
            .authenticate_key_for_record(&key, w.org.id, "Leads", mine.id)
            .await?;
        assert!(member.expect("org").2.is_none(), "another module's id");
        let (_, member) = store
            .authenticate_key_for_record(&key, other.org.id, "Contacts", theirs.id)
            .await?;
        assert!(member.is_none(), "an org the caller is not in");

        let updated = store
            .update_record(
                w.org.id,
                &contacts,
                mine.id,
                values(serde_json::json!({"Last_Name": "Suzuki"})),
                None,
                Origin::User(w.admin.id),
            )
            .await?;
        let (_, member) = store
            .authenticate_key_for_record(&key, w.org.id, "Contacts", mine.id)
            .await?;
        let record = member.and_then(|m| m.2).expect("the record");
        assert_eq!(record.version, updated.version, "the write just committed");
        assert!(record.fields.get().contains("Suzuki"));
        assert_eq!(store.record(w.org.id, "Contacts", mine.id).await?, updated);

        store
            .delete_record(w.org.id, "Contacts", mine.id, Origin::User(w.admin.id))
            .await?;
        let (_, member) = store
            .authenticate_key_for_record(&key, w.org.id, "Contacts", mine.id)
            .await?;
        assert!(member.expect("org").2.is_none(), "a deleted record");

        store.set_user_active("owner@example.com", false).await?;
        let e = assert_code(
            store
                .authenticate_key_for_record(&key, w.org.id, "Contacts", mine.id)
                .await,
            "user_deactivated",
            "GEN-10: refused at once",
        );
        assert_eq!(e.rule, Some("GEN-10"));
        assert_code(
            store
                .authenticate_key_for_record("kz_unknown", w.org.id, "Contacts", mine.id)
                .await,
            "unauthenticated",
            "an unknown key",
        );
        Ok(())
    }
);
