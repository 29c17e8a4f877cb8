//! The administrator outbox (GEN-9): who is mailed, once per topic and
//! window; claims with a lease; retries until given up; the purge.

use crate::fixtures::*;
use kizuna_domain::{Role, Text};
use kizuna_store::outbox::MAX_ATTEMPTS;
use kizuna_store::{NewMail, Store, now_ms};

fn mail<'a>(topic: &'a str, subject: &'a Text, window_ms: i64) -> NewMail<'a> {
    NewMail {
        topic,
        code: "records_failed",
        rule: Some("GEN-8"),
        subject,
        message: subject,
        fix: subject,
        details: &serde_json::Value::Null,
        window_ms,
    }
}

// GEN-9: active administrators only, one message each, once per window.
conformance!(
    outbox_mails_each_active_administrator_once_per_window,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let member = user(&store, "member@example.com").await?;
        store.add_member(w.org.id, member.id, Role::Member).await?;
        let away = user(&store, "away@example.com").await?;
        store
            .add_member(w.org.id, away.id, Role::Administrator)
            .await?;
        store.set_user_active("away@example.com", false).await?;
        let t = Text::new("Trouble", "問題");

        assert_eq!(
            store
                .notify_admins(&[w.org.id], &mail("t:1", &t, 60_000))
                .await?,
            1
        );
        assert_eq!(
            store
                .notify_admins(&[w.org.id], &mail("t:1", &t, 60_000))
                .await?,
            0,
            "the same topic within its window"
        );
        assert_eq!(
            store
                .notify_admins(&[w.org.id], &mail("t:2", &t, 60_000))
                .await?,
            1
        );
        assert_eq!(
            store
                .notify_admins(&[w.org.id], &mail("t:1", &t, 0))
                .await?,
            1,
            "after its window"
        );
        let list = store.outbox(w.org.id, None, 10).await?;
        assert_eq!(list.len(), 3);
        assert!(
            list.iter()
                .all(|m| m.to_address == "boss@example.com" && m.state == "queued")
        );
        assert!(list.windows(2).all(|p| p[0].id > p[1].id), "newest first");
        Ok(())
    }
);

// A claim is a lease: nobody else gets the message until it runs out; a
// failure waits and is retried; after MAX_ATTEMPTS it is given up.
conformance!(
    outbox_claims_lease_retries_and_gives_up,
    |store| async move {
        let w = world(&store, "boss@example.com").await?;
        let t = Text::new("Trouble", "問題");
        store
            .notify_admins(&[w.org.id], &mail("t:1", &t, 60_000))
            .await?;

        let got = store.claim_mail("a", 60_000, 10).await?;
        assert_eq!((got.len(), got[0].attempts), (1, 1));
        assert!(
            store.claim_mail("b", 60_000, 10).await?.is_empty(),
            "leased"
        );
        store
            .finish_mail(got[0].id, "b", Some(("not mine", 0)))
            .await?;
        assert_eq!(
            store.outbox(w.org.id, None, 1).await?[0].state,
            "sending",
            "only the owner ends it"
        );

        store
            .finish_mail(got[0].id, "a", Some(("connection refused", 60_000)))
            .await?;
        let m = &store.outbox(w.org.id, None, 1).await?[0];
        assert_eq!(
            (m.state.as_str(), m.last_error.as_deref()),
            ("queued", Some("connection refused"))
        );
        assert!(
            store.claim_mail("a", 60_000, 10).await?.is_empty(),
            "waits out its backoff"
        );

        // Another message, failing at every attempt with no wait between.
        store
            .notify_admins(&[w.org.id], &mail("t:3", &t, 60_000))
            .await?;
        for attempt in 1..=MAX_ATTEMPTS {
            let got = store.claim_mail("a", 60_000, 10).await?;
            assert_eq!((got.len(), got[0].attempts), (1, attempt));
            store
                .finish_mail(got[0].id, "a", Some(("again", 0)))
                .await?;
        }
        let m = &store.outbox(w.org.id, None, 1).await?[0];
        assert_eq!((m.state.as_str(), m.attempts), ("failed", MAX_ATTEMPTS));
        assert!(
            store.claim_mail("a", 60_000, 10).await?.is_empty(),
            "given up"
        );

        store
            .notify_admins(&[w.org.id], &mail("t:2", &t, 60_000))
            .await?;
        let sent = store.claim_mail("a", 60_000, 10).await?;
        store.finish_mail(sent[0].id, "a", None).await?;
        let m = &store.outbox(w.org.id, None, 1).await?[0];
        assert_eq!(m.state, "sent");
        assert!(m.sent_at.is_some());

        // The purge keeps nothing older than the cut, sent or not.
        assert_eq!(store.purge_outbox(now_ms() + 1).await?, 3);
        assert!(store.outbox(w.org.id, None, 10).await?.is_empty());
        Ok(())
    }
);
