from bihuan.core.retention import purger

from .actions import do_purge_personal_data


@purger("residents moved out or deceased")
def purge_residents(before) -> int:
    return do_purge_personal_data(before=before)
