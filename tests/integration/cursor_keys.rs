//! List-cursor keys read from Secrets Manager (the emulator's), and rotation:
//! cursors signed before a rotation keep working after it.

use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::list::Position;

use crate::helpers::endpoint;

fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url(endpoint())
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "local", "local", None, None, "test",
            ))
            .http_client(fleetgate_api::dynamo::https_client())
            .build(),
    )
}

fn position() -> Position {
    [("pk".to_owned(), "acme".to_owned()), ("sk".to_owned(), "vehicle#veh_1".to_owned())].into()
}

#[tokio::test]
async fn cursors_signed_before_a_rotation_still_verify_after_it() {
    let client = secrets_client();
    let name = format!("it-cursor-{}", fleetgate_api::keys::new_public_id(""));
    fleetgate_local::ensure_secret(&client, &name, "first-secret").await.unwrap();
    let before = CursorKeys::from_secret(client.clone(), name.clone());
    let old_cursor = before.signer().await.unwrap().encode("q", &position());

    // Rotation: a new value; the old one becomes AWSPREVIOUS.
    client.put_secret_value().secret_id(&name).secret_string("second-secret").send().await.unwrap();
    let after = CursorKeys::from_secret(client.clone(), name.clone());
    assert_eq!(after.decode("q", &old_cursor).await.unwrap(), position(), "a pre-rotation cursor verifies");
    let new_cursor = after.signer().await.unwrap().encode("q", &position());
    assert_ne!(new_cursor, old_cursor, "new cursors are signed with the new secret");
    assert_eq!(after.decode("q", &new_cursor).await.unwrap(), position());
    assert_eq!(after.decode("other query", &new_cursor).await.unwrap_err().code(), "invalid_cursor");
}

#[tokio::test]
async fn an_unreadable_secret_is_a_503_not_a_500() {
    let keys = CursorKeys::from_secret(secrets_client(), "no-such-secret".into());
    let err = keys.signer().await.unwrap_err();
    assert_eq!((err.status().as_u16(), err.code()), (503, "service_unavailable"));
}
