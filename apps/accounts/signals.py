"""A password saved on a user outside the accounts services ends every session of the user.

The admin's password forms (a user's "change password" page, the staff member's own) and the
`changepassword` command set the password with `User.set_password()` and `save()`. Django keeps
the new raw password on the instance (`_password`) until that save has sent `post_save`, which is
how a save that changes the password is told from any other. The API's password services store
the hash with an UPDATE and end the sessions themselves, so they never pass here twice.
"""

from __future__ import annotations

from typing import Any

from apps.accounts.models import User
from apps.accounts.services import user_password_changed_elsewhere


def end_sessions_on_new_password(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    if created or getattr(instance, "_password", None) is None:
        return
    user_password_changed_elsewhere(user=instance)
