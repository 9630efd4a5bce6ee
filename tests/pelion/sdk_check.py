"""Drives the real Pelion Python SDK (mbed-cloud-sdk 2.2.0) against a fleetbox server.

Environment: MBED_CLOUD_SDK_HOST (the server, e.g. http://127.0.0.1:PORT) and
MBED_CLOUD_SDK_API_KEY (an administrator's API key); FLEETBOX_ACCOUNT_ID (the account's
32-hex id). Exits non-zero with a message on the first expectation that fails.
"""
import os
import sys

from mbed_cloud import SDK, ApiFilter
from mbed_cloud.account_management import AccountManagementAPI
from mbed_cloud.sdk import ApiErrorResponse

HOST = os.environ["MBED_CLOUD_SDK_HOST"]
KEY = os.environ["MBED_CLOUD_SDK_API_KEY"]
ACCOUNT = os.environ["FLEETBOX_ACCOUNT_ID"]


def expect(cond, what):
    if not cond:
        print("FAILED: " + what, file=sys.stderr)
        sys.exit(1)
    print("ok: " + what)


def status_of(call):
    try:
        call()
    except ApiErrorResponse as e:
        return e.status_code
    return 200


sdk = SDK(api_key=KEY, host=HOST)
f = sdk.foundation

# The account and the key this script runs with.
me = f.account().me()
expect(me.id == ACCOUNT, "Account().me() is the server's account")
expect(me.status == "ACTIVE", "the account is ACTIVE")
key = f.api_key().me()
expect(key.key == KEY[:79], "ApiKey().me() shows the public part of this key")

# Users: create, read after write, update, list in pages of two, filter.
made = []
for i in range(5):
    u = f.user(
        email="sdk-user%d@example.com" % i,
        username="sdkuser%d" % i,
        full_name="SDK User %d" % i,
        password="Sdk-password-%d!x" % i,
    ).create()
    made.append(u)
expect(all(u.status == "ACTIVE" for u in made), "users made with a password are ACTIVE")
back = f.user(id=made[0].id).read()
expect(back.full_name == "SDK User 0", "a user reads back as written")
back.phone_number = "+47 22 00 00 00"
back.update()
again = f.user(id=made[0].id).read()
expect(again.phone_number == "+47 22 00 00 00", "an update is kept")
expect(again.full_name == "SDK User 0", "an update keeps what it did not change")
listed = list(f.user().list(page_size=2))
emails = [u.email for u in listed]
expect(len(listed) == 6, "six users listed through pages of two (got %d)" % len(listed))
expect(len(set(emails)) == 6, "no user twice across pages")
newest_first = [u.email for u in f.user().list(order="DESC", page_size=2)]
expect(newest_first == list(reversed(emails)), "DESC pages are the reverse order")
flt = ApiFilter()
flt.add_filter("email", "eq", "sdk-user3@example.com")
one = list(f.user().list(filter=flt))
expect(len(one) == 1 and one[0].username == "sdkuser3", "email filter finds one user")

# The administrator signed in (through the Mender login) before this script ran: the SDK reads
# that sign-in as a LoginHistory entity.
flt = ApiFilter()
flt.add_filter("email", "eq", "admin@example.com")
admin = list(f.user().list(filter=flt))[0]
history = f.user(id=admin.id).read().login_history
expect(len(history) == 1 and history[0].success is True, "the login history holds the sign-in")
expect(history[0].user_agent == "fleetbox-test-agent", "with the client's User-Agent")

# A user made without a password gets one, shown once, and must change it.
reset = f.user(email="sdk-nopass@example.com").create()
expect(reset.status == "RESET", "a user made without a password is RESET")
expect(reset.password and len(reset.password) >= 16, "its generated password is returned")

# Errors surface as the SDK's exceptions with the server's status.
dup = status_of(lambda: f.user(email="sdk-user1@example.com", password="Another-pass-1!").create())
expect(dup == 409, "a duplicate email is 409 (got %s)" % dup)
missing = status_of(lambda: f.user(id="0" * 32).read())
expect(missing == 404, "an unknown user is 404 (got %s)" % missing)

# API keys: a new key works at once for its own calls; delete it and it is refused.
k = f.api_key(name="sdk-made").create()
expect(k.key.startswith("ak_") and len(k.key) == 111, "a new key comes with its secret")
sdk2 = SDK(api_key=k.key, host=HOST)
expect(sdk2.foundation.api_key().me().name == "sdk-made", "the new key authenticates")
k2 = f.api_key(id=k.id).read()
expect(k2.key == k.key[:79], "a key reads back without its secret")
k2.name = "sdk-renamed"
k2.update()
expect(f.api_key(id=k.id).read().name == "sdk-renamed", "a key is renamed")
keys = list(f.api_key().list(page_size=2))
expect(any(x.id == k.id for x in keys), "the new key is listed")
f.api_key(id=k.id).delete()
gone = status_of(lambda: sdk2.foundation.api_key().me())
expect(gone == 401, "a deleted key is refused at once (got %s)" % gone)

# Delete a user.
f.user(id=made[4].id).delete()
expect(status_of(lambda: f.user(id=made[4].id).read()) == 404, "a deleted user is gone")

# The older interface: AccountManagementAPI.
api = AccountManagementAPI(dict(api_key=KEY, host=HOST))
acct = api.get_account()
expect(acct.id == ACCOUNT, "AccountManagementAPI.get_account")
groups = list(api.list_groups())
admins = [g for g in groups if g.name == "Administrators"]
expect(len(admins) == 1, "the Administrators group is listed")
members = list(api.list_group_users(admins[0].id))
expect(any(m.email == "admin@example.com" for m in members), "the administrator is in it")
users = list(api.list_users(page_size=2))
expect(len(users) == 6, "list_users pages through every user (got %d)" % len(users))
# Sub-accounts: made with an administrator and a key, managed through the tenant forms.
sub = f.account(
    display_name="SDK Sub",
    end_market="IT",
    admin_email="sub-admin@example.com",
    admin_password="Sub-admin-pass-1!",
).create()
expect(len(sub.id) == 32, "Account().create() makes a sub-account")
expect(sub.admin_key and len(sub.admin_key) == 111, "with its first API key, shown once")
subs = list(f.account().list())
expect([a.id for a in subs] == [sub.id], "Account().list() lists the sub-account")
expect(f.account(id=sub.id).read().display_name == "SDK Sub", "a sub-account reads back")
f.subtenant_user(account_id=sub.id, email="sub-user@example.com", password="Sub-user-pass-1!").create()
sub_users = sorted(u.email for u in sub.users())
expect(sub_users == ["sub-admin@example.com", "sub-user@example.com"], "its users, through the tenant form")
sub_sdk = SDK(api_key=sub.admin_key, host=HOST)
expect(sub_sdk.foundation.account().me().id == sub.id, "its key acts in the sub-account")
theirs = sorted(u.email for u in sub_sdk.foundation.user().list())
expect(theirs == sub_users, "the sub-account's administrator sees its users only")
expect(
    status_of(lambda: sub_sdk.foundation.account(id=ACCOUNT).read()) == 404,
    "and not the parent account",
)
# A key made in the sub-account by the parent's administrator (tenant form), read back, deleted.
sub_admin = [u for u in sub.users() if u.email == "sub-admin@example.com"][0]
skey = f.subtenant_api_key(account_id=sub.id, name="sub-made", owner=sub_admin.id).create()
expect(skey.key and len(skey.key) == 111, "SubtenantApiKey().create() shows the key once")
expect(f.subtenant_api_key(account_id=sub.id, id=skey.id).read().name == "sub-made", "it reads back")
expect(SDK(api_key=skey.key, host=HOST).foundation.account().me().id == sub.id, "and acts in the sub-account")
f.subtenant_api_key(account_id=sub.id, id=skey.id).delete()
gone = status_of(lambda: f.subtenant_api_key(account_id=sub.id, id=skey.id).read())
expect(gone == 404, "a deleted sub-account key is gone (got %s)" % gone)

# Invitations: made, listed, read, withdrawn.
inv = f.user_invitation(email="sdk-invitee@example.com").create(valid_for_days=7)
expect(len(inv.id) == 32 and inv.email == "sdk-invitee@example.com", "UserInvitation().create()")
listed_inv = [i.id for i in f.user_invitation().list()]
expect(inv.id in listed_inv, "the invitation is listed")
expect(f.user_invitation(id=inv.id).read().email == "sdk-invitee@example.com", "it reads back")
f.user_invitation(id=inv.id).delete()
gone = status_of(lambda: f.user_invitation(id=inv.id).read())
expect(gone == 404, "a withdrawn invitation is gone (got %s)" % gone)
print("all SDK checks passed")
