//! The web UI's sessions and the sign-in limit's failures.

use kizuna_store::Store;

// A session is found by its token only (the database keeps a digest), ends
// when removed or when its user is deactivated, and carries its own CSRF
// token and the user's language and time zone.
conformance!(
    sessions_by_token_until_removed_or_deactivated,
    |store| async move {
        let ann = store.create_user("ann@example.com", "Ann", None).await?;
        let (token, s) = store.create_session(&ann).await?;
        assert_eq!(token.len(), 64);
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(token, s.csrf);
        let found = store.session(&token).await?.expect("the session");
        assert_eq!((found.id, &found.user, &found.csrf), (s.id, &ann, &s.csrf));
        assert_eq!(found.language, None);
        assert_eq!(
            store.session(&s.csrf).await?,
            None,
            "only its own token names it"
        );
        assert_eq!(store.session("").await?, None);

        store.set_user_language(ann.id, Some("en")).await?;
        assert_eq!(
            store
                .session(&token)
                .await?
                .expect("live")
                .language
                .as_deref(),
            Some("en")
        );

        store
            .set_user_time_zone(ann.id, Some("Europe/Paris"))
            .await?;
        let code = store
            .set_user_time_zone(ann.id, Some("Mars/Olympus"))
            .await
            .map_err(|e| e.code);
        assert_eq!(code, Err("unknown_time_zone"));
        let live = store.session(&token).await?.expect("live");
        assert_eq!(
            live.time_zone.as_deref(),
            Some("Europe/Paris"),
            "the refused zone changed nothing"
        );

        let (other, fresh) = store.create_session(&ann).await?;
        assert_eq!(
            (fresh.language.as_deref(), fresh.time_zone.as_deref()),
            (Some("en"), Some("Europe/Paris")),
            "a new session carries the user's choices"
        );
        assert_ne!(other, token, "a new id every time");
        store.remove_session(s.id).await?;
        assert_eq!(store.session(&token).await?, None);
        assert!(store.session(&other).await?.is_some());

        store.set_user_active("ann@example.com", false).await?;
        assert_eq!(
            store.session(&other).await?,
            None,
            "a deactivated user is signed out"
        );
        Ok(())
    }
);

// Failures are counted per account (e-mail as typed, any case), within a
// window; a success clears the account's failures and old ones of all.
conformance!(
    sign_in_failures_per_account_and_window,
    |store| async move {
        let now = kizuna_store::now_ms();
        for _ in 0..3 {
            store.record_sign_in_failure(" Ann@Example.com").await?;
        }
        store.record_sign_in_failure("bob@example.com").await?;
        assert_eq!(
            store
                .sign_in_failures("ann@example.com", now - 1000)
                .await?,
            3
        );
        assert_eq!(
            store
                .sign_in_failures("bob@example.com", now - 1000)
                .await?,
            1
        );
        assert_eq!(
            store
                .sign_in_failures("ann@example.com", now + 60_000)
                .await?,
            0
        );
        store
            .clear_sign_in_failures("ANN@example.com", now - 60_000)
            .await?;
        assert_eq!(
            store
                .sign_in_failures("ann@example.com", now - 1000)
                .await?,
            0
        );
        assert_eq!(
            store
                .sign_in_failures("bob@example.com", now - 1000)
                .await?,
            1
        );
        Ok(())
    }
);
