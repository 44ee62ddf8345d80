"""Report-in approval, tasks and missed shift starts run on the loop engine; overdue places are blind spots; the
certificate renders Chinese; photos must really be images."""

import datetime as dt
import io
import shutil
import subprocess

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from bihuan.core.errors import Refused
from bihuan.forces import roster, tasks
from bihuan.forces.actions import (
    do_assign_shift,
    do_create_place,
    do_create_post,
    do_decide_report_in,
    do_log_disinfection,
    do_report_in,
    do_tap_duty,
)
from bihuan.forces.certificate import certificate_pdf
from bihuan.forces.models import MISSED_START, REPORT_IN, HelperStatus
from bihuan.loops.engine import remind_round
from bihuan.loops.models import Loop, LoopEvent
from bihuan.notify.models import Message

from .helpers import active_helper


def png_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def test_a_report_in_opens_the_communitys_loop_and_an_outsider_cannot_approve_it(district):
    d = district
    helper, merged = do_report_in(d.community_a, name="孙晓燕", phone="13912340001", kind="youth")
    loop = Loop.objects.get(kind=REPORT_IN, subject_id=helper.pk)
    assert not merged and loop.owner_unit == d.community_a and loop.due_at is not None
    assert Message.objects.filter(user=d.users["community_a"], subject__contains="孙晓燕").exists()  # told at once
    with pytest.raises(Refused, match="不在您的管辖范围内"):
        do_decide_report_in(helper, approve=True, acting_user=d.users["village_b"])
    # Reporting again by ID number merges into the same helper and the same loop.
    again, merged = do_report_in(d.community_a, name="孙晓燕", phone="13912340001", kind="youth")
    assert merged and again.pk == helper.pk and again.reports == 2
    assert Loop.objects.filter(kind=REPORT_IN, subject_id=helper.pk).count() == 1
    do_decide_report_in(helper, approve=False, acting_user=d.users["community_a"])
    assert Loop.objects.get(pk=loop.pk).state == "returned"
    # Rejected, then reporting again: the same loop is issued again, with a fresh deadline.
    again, _ = do_report_in(d.community_a, name="孙晓燕", phone="13912340001", kind="youth")
    assert again.status == HelperStatus.PENDING and Loop.objects.get(pk=loop.pk).state == "issued"
    do_decide_report_in(again, approve=True, acting_user=d.users["community_a"])
    assert Loop.objects.get(pk=loop.pk).state == "closed"


def test_a_missed_shift_start_is_reminded_then_escalated_once_to_the_posts_unit(district, clock):
    d = district
    helper = active_helper(d.community_a)
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    start = timezone.now() + dt.timedelta(hours=1)
    shift = do_assign_shift(post, helper=helper, starts_at=start, ends_at=start + dt.timedelta(hours=8),
                            acting_user=None)
    clock.advance(minutes=61)
    assert tasks.shifts_round("w1") == 1  # the helper is reminded at the start
    assert tasks.shifts_round("w1") == 0
    shift.refresh_from_db()
    assert shift.reminded_at and not Loop.objects.filter(kind=MISSED_START).exists()
    clock.advance(minutes=10)
    tasks.shifts_round("w1")
    tasks.shifts_round("w2")
    loop = Loop.objects.get(kind=MISSED_START, subject_id=shift.pk)
    assert loop.owner_unit == d.compound_a  # escalated once to the post's unit, told at once
    assert Message.objects.filter(user=d.users["property_a"], subject__contains="缺岗").exists()
    # Going on duty late closes it.
    do_tap_duty(shift, on=True, helper=helper)
    loop.refresh_from_db()
    assert loop.state == "closed" and "迟到" in LoopEvent.objects.filter(loop=loop).last().note
    clock.advance(hours=1)
    do_tap_duty(shift, on=False, helper=helper)
    assert round(roster.seconds_served_by(helper) / 3600, 2) == 1.0


def test_an_unhandled_missed_start_goes_to_the_level_above_after_one_reminder(district, clock):
    d = district
    helper = active_helper(d.community_a)
    post = do_create_post(d.compound_a, name="锦悦小区大门", kind="gate", acting_user=None)
    start = timezone.now()
    do_assign_shift(post, helper=helper, starts_at=start + dt.timedelta(minutes=5), ends_at=start + dt.timedelta(hours=8),
                    acting_user=None)
    clock.advance(minutes=20)
    tasks.shifts_round("w")
    loop = Loop.objects.get(kind=MISSED_START)
    clock.advance(minutes=31)
    remind_round([Loop.objects.get(pk=loop.pk)])
    clock.advance(minutes=31)
    remind_round([Loop.objects.get(pk=loop.pk)])
    actions = list(LoopEvent.objects.filter(loop=loop).values_list("action", flat=True))
    assert actions.count("reminded") == 1 and actions.count("escalated") == 1


def test_places_not_disinfected_in_time_are_blind_spots_rolled_up(district, clock, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    d = district
    lift = do_create_place(d.compound_a, name="3号楼电梯", kind="lift", every_hours=12, acting_user=None)
    do_create_place(d.group_b, name="村口道路", kind="road", acting_user=None)
    _, totals = roster.rollup()
    assert totals[d.district.id].places_overdue == 2 and totals[d.township_a.id].places_overdue == 1
    helper = active_helper(d.community_a)
    log = do_log_disinfection(lift, agent="含氯消毒液", concentration="500mg/L", area_m2=20, helper=helper,
                              photo=SimpleUploadedFile("lift.png", png_bytes(), content_type="image/png"))
    assert log.photo.name.endswith(".png") and (tmp_path / log.photo.name).exists()
    _, totals = roster.rollup()
    assert totals[d.township_a.id].places_overdue == 0 and totals[d.district.id].blind_spots >= 1
    clock.advance(hours=13)
    _, totals = roster.rollup()
    assert totals[d.compound_a.id].places_overdue == 1
    with pytest.raises(Refused, match="请上传照片"):
        do_log_disinfection(lift, agent="含氯消毒液", concentration="500mg/L", helper=helper,
                            photo=SimpleUploadedFile("x.jpg", b"not an image at all", content_type="image/jpeg"))


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) is not installed")
def test_the_certificate_pdf_renders_chinese(district, tmp_path):
    helper = active_helper(district.community_a, "周卫国", kind="veteran")
    pdf = certificate_pdf(helper)
    assert pdf.startswith(b"%PDF") and (b"WenQuanYi" in pdf or b"STSong" in pdf)
    (tmp_path / "c.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(tmp_path / "c.pdf"), str(tmp_path / "c")],
                   check=True)
    text = subprocess.run(["pdftotext", str(tmp_path / "c.pdf"), "-"], capture_output=True, text=True).stdout
    assert "志愿服务证明" in text and "周卫国" in text and "累计服务" in text
    assert (tmp_path / "c.png").stat().st_size > 5000
