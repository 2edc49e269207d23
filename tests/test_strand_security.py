"""A reader runs only code its own process gave it, or code signed with its secret."""
import cloudpickle
import pytest

import strand
from strand.writer import record_signature
from strand_support import add, make_store, touch

pytestmark = pytest.mark.timeout(60)

SECRET = b"a shared secret, 32 bytes long.."


def _pickled_task(store, tmp_path, secret=SECRET, **writer_kwargs):
    """A task whose function only exists pickled in the record: it creates a
    file, so the test sees whether it ran."""
    marker = tmp_path / "ran"
    writer = strand.StoreTaskWriter(touch, store, pickle_func=True, secret=secret,
                                    **writer_kwargs)
    return writer(str(marker)), marker


def _empty_reader(store, **kwargs):
    """A reader that knows no function by name (an empty registry)."""
    return strand.StoreTaskReader(store, functions={}, **kwargs)


def _refusal(store, task):
    record = store[task.id]
    assert record["status"] == "error" and record["error_type"] == "TaskRefused"
    return record["error_message"]


@pytest.fixture(params=["dict", "sqlite"])
def store(request, tmp_path):
    return make_store(request.param, tmp_path, request)


def test_signed_pickled_function_runs_on_a_reader_with_the_secret(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path)
    _empty_reader(store, secret=SECRET).run_pending()
    assert task.result(0) == str(marker) and marker.exists()


def _dill_pickles_lambdas():
    import dill
    try:
        dill.dumps(lambda: None)
    except Exception:  # dill 0.4 on Python 3.15: 'code' object has no attribute 'co_lnotab'
        return False
    return True


def test_signed_pickled_closure_runs_and_the_record_names_its_pickler(store, tmp_path):
    marker = tmp_path / "closure"
    writer = strand.StoreTaskWriter(lambda suffix: touch(f"{marker}{suffix}"), store,
                                    pickle_func=True, secret=SECRET)
    task = writer("-ran")
    expected = "dill" if _dill_pickles_lambdas() else "cloudpickle"
    assert store[task.id]["func_serializer"] == expected
    _empty_reader(store, secret=SECRET).run_pending()
    assert task.result(0) == f"{marker}-ran" and (tmp_path / "closure-ran").exists()


def _dill_cannot_pickle_code(monkeypatch):
    """dill as it is on Python 3.15, on any version."""
    import dill

    def dumps(*args, **kwargs):
        raise AttributeError("'code' object has no attribute 'co_lnotab'")
    monkeypatch.setattr(dill, "dumps", dumps)


def test_pickle_func_true_falls_back_to_cloudpickle_where_dill_fails(store, tmp_path,
                                                                    monkeypatch):
    _dill_cannot_pickle_code(monkeypatch)
    task, marker = _pickled_task(store, tmp_path)
    assert store[task.id]["func_serializer"] == "cloudpickle"
    _empty_reader(store, secret=SECRET).run_pending()
    assert task.result(0) == str(marker) and marker.exists()


def test_an_explicitly_named_pickler_does_not_fall_back(tmp_path, monkeypatch):
    _dill_cannot_pickle_code(monkeypatch)
    writer = strand.StoreTaskWriter(touch, {}, pickle_func="dill", secret=SECRET)
    with pytest.raises(AttributeError, match="co_lnotab"):
        writer(str(tmp_path / "never"))


def test_pickled_function_is_refused_by_a_reader_without_a_secret(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path)
    _empty_reader(store).run_pending()
    assert "secret" in _refusal(store, task)
    assert not marker.exists()
    with pytest.raises(strand.StoreTaskError, match="TaskRefused"):
        task.result(0)


def test_unsigned_pickled_function_is_refused(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path, secret=None)
    _empty_reader(store, secret=SECRET).run_pending()
    assert "not signed" in _refusal(store, task)
    assert not marker.exists()


def test_wrong_secret_is_refused(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path)
    _empty_reader(store, secret=b"another secret of 32 bytes......").run_pending()
    assert "signature" in _refusal(store, task)
    assert not marker.exists()


def test_tampered_arguments_are_refused(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path)
    record = store[task.id]
    record["args"] = [str(tmp_path / "elsewhere")]
    store[task.id] = record
    _empty_reader(store, secret=SECRET).run_pending()
    assert "altered" in _refusal(store, task)
    assert not marker.exists() and not (tmp_path / "elsewhere").exists()


def test_tampered_function_is_refused(store, tmp_path):
    task, marker = _pickled_task(store, tmp_path)
    record = store[task.id]
    other = tmp_path / "injected"
    record["func"] = cloudpickle.dumps(lambda *args: touch(str(other)))
    store[task.id] = record
    _empty_reader(store, secret=SECRET).run_pending()
    assert "altered" in _refusal(store, task)
    assert not marker.exists() and not other.exists()


def test_forged_record_written_by_hand_is_refused(store, tmp_path):
    marker = tmp_path / "forged"
    record = {"id": "forged", "name": "evil", "qualname": "x:evil",
              "func": cloudpickle.dumps(lambda: touch(str(marker))),
              "func_serializer": "cloudpickle",
              "args": [], "kwargs": {}, "serializer": None, "status": "new", "time": 0.0}
    record["signature"] = record_signature(b"guessed secret, not the real one", record)
    store["forged"] = record
    _empty_reader(store, secret=SECRET).run_pending()
    assert store["forged"]["error_type"] == "TaskRefused" and not marker.exists()


def test_unknown_name_is_refused(store):
    task = strand.StoreTaskWriter(add, store)(1, 2)
    _empty_reader(store).run_pending()
    assert "no function named 'add'" in _refusal(store, task)


def test_registered_name_runs_without_any_secret(store):
    task = strand.StoreTaskWriter(add, store)(1, 2)
    strand.StoreTaskReader(store, functions=[add]).run_pending()
    assert task.result(0) == 3


def test_pickled_arguments_need_a_signature(store):
    writer = strand.StoreTaskWriter(add, store, serializer="pickle", secret=SECRET)
    task = writer(1, 2)
    record = store[task.id]
    record["signature"] = None
    store[task.id] = record
    strand.StoreTaskReader(store, functions=[add], secret=SECRET).run_pending()
    assert "not signed" in _refusal(store, task)


def test_pickled_arguments_are_refused_by_a_reader_without_secret(store):
    task = strand.StoreTaskWriter(add, store, serializer="pickle", secret=SECRET)(1, 2)
    strand.StoreTaskReader(store, functions=[add]).run_pending()
    assert "secret" in _refusal(store, task)


def test_require_signature_refuses_unsigned_records(store):
    task = strand.StoreTaskWriter(add, store)(1, 2)
    strand.StoreTaskReader(store, functions=[add], secret=SECRET,
                           require_signature=True).run_pending()
    assert "requires signatures" in _refusal(store, task)


def test_tampered_pickled_result_is_not_loaded_by_the_writer(store):
    import pickle

    writer = strand.StoreTaskWriter(add, store, serializer="pickle", secret=SECRET)
    task = writer(1, 2)
    strand.StoreTaskReader(store, functions=[add], secret=SECRET).run_pending()
    assert task.result(0) == 3
    record = store[task.id]
    record["result"] = pickle.dumps(99)
    store[task.id] = record
    with pytest.raises(strand.SignatureError):
        task.result(0)


def test_short_secret_is_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        strand.StoreTaskReader({}, secret="short")
