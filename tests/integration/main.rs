//! Integration tests against the AWS emulator (moto), compiled as one binary so the suite links once.
//! Run them with `make test` (it starts the emulator and sets FLEETGATE_TEST_DYNAMODB_URL).

mod authorizer;
mod call_time;
mod cursor_keys;
mod fault_proxy;
mod faults;
mod helpers;
mod inspections;
mod limits;
mod paging;
mod provisioner;
mod rate_limits;
mod review;
mod route_scopes;
mod route_table;
mod security_doc;
mod template_policies;
mod vehicles;
mod webhook_delivery;
mod webhook_events;
mod webhook_poller;
mod webhook_routes;
mod webhook_store;
mod whoami;
