"""Every example of parallel-readme.md and parallel-quickstart.rst, run as
written against a local HTTP server (PriceSite) instead of the internet.

Where a document's snippet cannot run literally, the test says why in a
comment (missing commas, `pass` bodies, an exception message Python does not
produce).
"""
import threading

import jinja2
import pytest
import requests

import parallel
from parallel_support import PATIENCE, PRICES, PriceSite, closed_port_url, parallel_threads, wait_until

pytestmark = [pytest.mark.timeout(90)]

SITE = None          # the PriceSite of the running test (worker processes fork it in)
DB = []              # what store_in_db() stored, in the calling process
DB_LOCK = threading.Lock()


@pytest.fixture(scope="module")
def running_site():
    site = PriceSite().start()
    yield site
    site.stop()


@pytest.fixture(autouse=True)
def site(running_site):
    global SITE
    SITE = running_site
    running_site.requests.clear()
    DB.clear()
    yield running_site
    parallel.shutdown()
    assert wait_until(lambda: not parallel_threads(), 5), parallel_threads()


def store_in_db(data):
    with DB_LOCK:
        DB.append(data)
    return {"stored": data}


# ---------------------------------------------------------------------------
# parallel-readme.md
# ---------------------------------------------------------------------------

def download_and_store(url, expected_code=200):
    resp = requests.get(url)
    if resp.status_code != expected_code:
        raise ValueError()
    result = store_in_db(resp.json())
    return result


def test_readme_map_urls(site):
    urls = [site.url("/200/python.org"), site.url("/200/rmotr.com")]

    results = parallel.map(download_and_store, urls)
    python_result = results[0]

    assert python_result == {"stored": {"site": "python.org"}}
    assert results[1] == {"stored": {"site": "rmotr.com"}}


def test_readme_multiple_params_as_sequences(site):
    urls = [
        (site.url("/204/python.org"), 204),
        (site.url("/201/rmotr.com"), 201),
    ]

    # python.org answers 204 as expected, so the status check passes (had
    # expected_code not reached the call, ValueError would be raised) and
    # resp.json() then fails: a 204 has no body.  That first exception, in
    # input order, is what parallel.map raises.
    with pytest.raises(requests.exceptions.JSONDecodeError):
        parallel.map(download_and_store, urls)

    results = parallel.map(download_and_store, urls, silent=True)
    assert results[0].params == (site.url("/204/python.org"), 204)
    assert results[1] == {"stored": {"site": "rmotr.com"}}


def test_readme_multiple_params_in_dictionaries(site):
    urls = {
        "python": (site.url("/200/python.org"), 200),
        "rmotr": (site.url("/201/rmotr.com"), 201),
    }

    results = parallel.map(download_and_store, urls)
    python_result = results["python"]

    assert python_result == {"stored": {"site": "python.org"}}
    assert results == {"python": python_result, "rmotr": {"stored": {"site": "rmotr.com"}}}


def price_from(crypto, exchange, period=None, options=None):
    path = f"/price/{crypto}/{exchange}" + (f"?period={period}" if period else "")
    return requests.get(SITE.url(path), timeout=PATIENCE).json()["price"]


def get_price_bitcoin(exchange):
    return price_from("BTC", exchange)


def get_price_ether(exchange, options=None):
    return price_from("ETH", exchange, options=options)


def get_price_ripple(exchange):
    return price_from("XRP", exchange)


def render_template(name, context):
    """A stand-in for Flask's render_template: Jinja2 with an in-memory loader."""
    templates = {"index.html": "BTC {{ prices.btc }} ETH {{ prices.eth }} XRP {{ prices.xrp }}"}
    env = jinja2.Environment(loader=jinja2.DictLoader(templates))
    return env.get_template(name).render(**context)


def test_readme_par_view():
    def index(request):
        # The document's dict lacks the comma after the 'btc' entry.
        prices = parallel.par({
            'btc': (get_price_bitcoin, 'bitstamp'),
            'eth': parallel.future(get_price_ether, exchange='bitfinex'),
            'xrp': parallel.future(get_price_ripple, 'bitstamp'),
        })

        return render_template('index.html', context={
            'prices': prices
        })

    assert index(request=None) == "BTC 7800.2 ETH 290.15 XRP 0.45"


def test_readme_choosing_an_executor(site):
    urls = [site.url("/200/python.org"), site.url("/200/rmotr.com")]
    expected = [{"stored": {"site": "python.org"}}, {"stored": {"site": "rmotr.com"}}]

    # Multithreading:
    results = parallel.thread.map(download_and_store, urls)   # Attribute
    assert results == expected
    results = parallel.map(download_and_store, urls,
                           executor=parallel.THREAD_EXECUTOR)  # Parameter
    assert results == expected

    # Multiprocessing:
    results = parallel.process.map(download_and_store, urls)   # Attribute
    assert results == expected
    results = parallel.map(download_and_store, urls,
                           executor=parallel.PROCESS_EXECUTOR)  # Parameter
    assert results == expected
    # store_in_db ran in the worker processes, not here.
    assert len(DB) == 4

    results = parallel.map(
        download_and_store, urls,
        executor=parallel.THREAD_EXECUTOR,
        timeout=10,
        max_workers=5)
    assert results == expected


@parallel.decorate
def decorated_download_and_store(url):
    return requests.get(url, timeout=PATIENCE).json()["site"]


def test_readme_decorating_functions(site):
    download_and_store = decorated_download_and_store
    urls = [site.url("/200/python.org"), site.url("/200/rmotr.com")]

    results = download_and_store.map(urls)  # Use the function as a handler
    assert results == ["python.org", "rmotr.com"]

    results = download_and_store.thread.map(urls, timeout=10, max_workers=5)
    assert results == ["python.org", "rmotr.com"]

    results = download_and_store.process.map(urls, timeout=10, max_workers=5)
    assert results == ["python.org", "rmotr.com"]

    result = download_and_store(site.url("/200/python.org"))
    assert result == "python.org"


def test_readme_decorated_par():
    @parallel.decorate
    def get_price_bitcoin(exchange):
        return price_from("BTC", exchange)

    @parallel.decorate
    def get_price_ether(exchange):
        return price_from("ETH", exchange)

    prices = parallel.par({
        'btc': get_price_bitcoin.future('bitstamp'),
        'eth': get_price_ether.future(exchange='bitfinex'),
    })
    assert prices == {"btc": 7800.20, "eth": 290.15}

    btc = get_price_bitcoin('bitstamp')
    assert btc == 7800.20


def test_readme_sequential_or_named_results(site):
    def download_and_store(url):
        return requests.get(url, timeout=PATIENCE).json()["site"] + " results"

    # Sequential:
    results = parallel.map(download_and_store, [
        site.url("/200/python.org"),
        site.url("/200/rmotr.com"),
    ])
    assert results == ['python.org results', 'rmotr.com results']

    # Named (with a dictionary):
    results = parallel.map(download_and_store, {
        'python': site.url("/200/python.org"),
        'rmotr': site.url("/200/rmotr.com"),
    })
    assert results == {
        'python': 'python.org results',
        'rmotr': 'rmotr.com results'
    }


CALLS = []


def recording_download_and_store(url, content_type, db_table='websites', log_level='info',
                                 options=None):
    CALLS.append((url, content_type, db_table, log_level, options))
    return (url, content_type, db_table, log_level, options)


def test_readme_named_and_optional_parameters():
    download_and_store = recording_download_and_store

    results = parallel.map(download_and_store, [
        ('https://python.org', 'json'),  # download_and_store('https://python.org', 'json')
        ('https://rmotr.com', 'xml')     # download_and_store('https://rmotr.com', 'xml')
    ])
    assert results == [
        ('https://python.org', 'json', 'websites', 'info', None),
        ('https://rmotr.com', 'xml', 'websites', 'info', None),
    ]

    results = parallel.map(download_and_store, [
        # download_and_store('https://python.org', 'json', db_table='webpages')
        ('https://python.org', 'json', {'db_table': 'webpages'}),

        # (the document's comment says db_table='debug'; the code passes log_level)
        ('https://rmotr.com', 'xml', {'log_level': 'debug'})
    ])
    assert results == [
        ('https://python.org', 'json', 'webpages', 'info', None),
        ('https://rmotr.com', 'xml', 'websites', 'debug', None),
    ]

    results = parallel.map(download_and_store, [
        ('https://python.org', 'json'),
        ('https://rmotr.com', 'xml')
    ], extras={
        'db_table': 'temporary_webpages'
    })
    # all the URLs are stored in temporary_webpages
    assert [r[2] for r in results] == ['temporary_webpages', 'temporary_webpages']


def test_readme_parallel_arg():
    # The document's function takes content_type positionally, which this
    # example does not pass; here it has a default so the call can run.
    def download_and_store(url, content_type='json', options=None):
        return url, content_type, options

    results = parallel.map(download_and_store, {
        'python': parallel.arg('https://python.org', options={'Content-Type': 'application/json'}),
        'rmotr': 'https://rmotr.com'
    })
    assert results == {
        'python': ('https://python.org', 'json', {'Content-Type': 'application/json'}),
        'rmotr': ('https://rmotr.com', 'json', None),
    }

    # "if your function receives a dictionary as parameter": arg passes it as is.
    assert parallel.map(len, [parallel.arg({'a': 1, 'b': 2})]) == [2]


def test_readme_par_future_with_options():
    # The document's dict lacks a comma after the 'btc' entry, and its
    # get_price_ether takes no options; here it accepts them.
    prices = parallel.par({
        'btc': parallel.future(get_price_bitcoin, exchange='bitstamp'),
        'eth': parallel.future(get_price_ether, 'bitfinex',
                               options={'Content-Type': 'application/json'}),
    })
    assert prices == {'btc': 7800.20, 'eth': 290.15}


def test_readme_error_handling():
    def add(x, y):
        return x + y

    results = parallel.map(add, [
        (2, 3),
        ('a', 5),  # will fail
        ('hello ', 'world')
    ], silent=True)

    assert results.failures is True  # print(results.failures) -> True

    r1, r2, r3 = results
    assert r1 == 5
    assert r3 == 'hello world'

    # The document's message ("unsupported operand type(s) for +: 'int' and
    # 'str'") is the one of 5 + 'a'; 'a' + 5 raises this one:
    try:
        'a' + 5
    except TypeError as exc:
        message = exc.args[0]
    assert r2 == parallel.FailedTask(
        params=('a', 5),
        ex=TypeError(message)
    )

    assert results.replace_failed(None) == [5, None, 'hello world']
    assert isinstance(results, parallel.BaseResult)
    assert results.failed == [r2]
    assert results.succeeded == [5, 'hello world']


# ---------------------------------------------------------------------------
# parallel-quickstart.rst
# ---------------------------------------------------------------------------

@parallel.decorated
def get_price_bitstamp(crypto, period='5m'):
    return price_from(crypto, "bitstamp", period)


@parallel.decorated
def get_price_bitfinex(crypto, period='5m'):
    return price_from(crypto, "bitfinex", period)


@parallel.decorated
def get_price_coinbase(crypto, period='5m'):
    return price_from(crypto, "coinbase", period)


def django_index(request):
    prices = parallel.par({
        'stamp': get_price_bitstamp.future(crypto='BTC'),
        'finex': get_price_bitfinex.future(crypto='BTC'),
        'base': get_price_coinbase.future(crypto='BTC'),
    })

    return quickstart_render('index.html', context={
        'prices': prices
    })


def quickstart_render(name, context):
    templates = {"index.html": (
        "<ul>\n"
        "    <li>Bitstamp: {{ prices.stamp }}</li>\n"
        "    <li>BitFinex: {{ prices.finex }}</li>\n"
        "    <li>Coinbase: {{ prices.base }}</li>\n"
        "</ul>")}
    env = jinja2.Environment(loader=jinja2.DictLoader(templates))
    return env.get_template(name).render(**context)


def test_quickstart_basics_and_template():
    assert django_index(request=None) == (
        "<ul>\n"
        "    <li>Bitstamp: 7800.2</li>\n"
        "    <li>BitFinex: 7821.89</li>\n"
        "    <li>Coinbase: 7789.32</li>\n"
        "</ul>")


def test_quickstart_original_function_verbatim():
    stamp_price = get_price_bitstamp(crypto='BTC')
    assert stamp_price == 7800.20


def test_quickstart_sequential():
    prices = parallel.par([
        get_price_bitstamp.future(crypto='BTC'),
        get_price_bitfinex.future(crypto='BTC'),
        get_price_coinbase.future(crypto='BTC'),
    ])

    assert prices == [7800.20, 7821.89, 7789.32]


def plain_get_price_bitfinex(crypto, period='5m'):  # Not Decorated!
    return price_from(crypto, "bitfinex", period)


def test_quickstart_passing_parameters(site):
    get_price_bitfinex = plain_get_price_bitfinex

    prices = parallel.par([
        get_price_bitstamp.future('BTC', period='10m'),
        # not decorated function:
        parallel.future(get_price_bitfinex, 'BTC', period='10m')
    ])
    assert prices == [7800.20, 7821.89]

    prices = parallel.par([
        (get_price_bitstamp, 'BTC', {'period': '10m'}),
        (get_price_bitfinex, 'BTC', {'period': '10m'}),
    ])
    assert prices == [7800.20, 7821.89]
    assert site.requests.count("/price/BTC/bitfinex?period=10m") == 2


def test_quickstart_extras(site):
    get_price_bitfinex = plain_get_price_bitfinex
    prices = parallel.par([
        (get_price_bitstamp, 'BTC'),
        (get_price_bitfinex, 'BTC'),
    ], extras={
        'period': '10m'
    })
    assert prices == [7800.20, 7821.89]
    assert sorted(site.requests) == ["/price/BTC/bitfinex?period=10m",
                                     "/price/BTC/bitstamp?period=10m"]


def test_quickstart_other_execution_options():
    prices = parallel.par([
        get_price_bitstamp.future('BTC'),
        get_price_bitfinex.future('BTC'),
    ], timeout=10, max_workers=4)
    assert prices == [7800.20, 7821.89]


def test_quickstart_silent_mode():
    down = closed_port_url()

    @parallel.decorated
    def get_price_bitfinex(crypto, period='5m'):
        return requests.get(f"{down}/price/{crypto}/bitfinex?period={period}",
                            timeout=PATIENCE).json()["price"]

    prices = parallel.par({
        'stamp': get_price_bitstamp.future('BTC'),
        'finex': get_price_bitfinex.future('BTC', period='5m'),  # FAILS!
        'base': get_price_coinbase.future('BTC'),
    }, silent=True)

    # Check if something failed
    assert prices.failures == True  # noqa: E712 (the document's spelling)

    # The tasks that didn't fail are available
    assert prices.succeeded == {
        'stamp': 7800.20,
        'base': 7789.32
    }

    # (the document writes `results.failed`; the variable is `prices`)
    failed = prices.failed
    assert list(failed) == ['finex']
    assert failed['finex'].params == ('BTC',)
    assert failed['finex'].kwargs == {'period': '5m'}
    assert isinstance(failed['finex'].ex, requests.ConnectionError)
    # A ConnectionError's args hold the underlying urllib3 error object,
    # so equality is checked against the very exception received.
    assert failed == {'finex': parallel.FailedTask(
        params=('BTC',), kwargs={'period': '5m'}, ex=failed['finex'].ex)}


def test_quickstart_non_blocking_api():
    functions = {
        'stamp': get_price_bitstamp.future('BTC'),
        'finex': get_price_bitfinex.future('BTC'),
        'base': get_price_coinbase.future('BTC'),
    }
    with parallel.async_par(functions, max_workers=5) as ex:
        # do something here
        prices = ex.results(timeout=4)
    assert prices == {'stamp': 7800.20, 'finex': 7821.89, 'base': 7789.32}


def test_prices_served_are_the_documents():
    # Guard: the values asserted above are the documents' own numbers.
    assert PRICES[("BTC", "bitstamp")] == 7800.20
    assert PRICES[("BTC", "coinbase")] == 7789.32
