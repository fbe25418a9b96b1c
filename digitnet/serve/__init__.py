"""`digitnet serve`: a local web page to draw a digit and watch the network answer, and a JSON API.

    api.py       what the routes do (predict, model, evaluate), as plain functions of the request body:
                 no HTTP here, so it is tested without a socket
    models.py    the checkpoints the page can switch between, and the one served now
    training.py  training from the page: one `digitnet train` child process at a time, watched
    workers.py   the processes that compute predictions side by side
    inside.py    "Inside the network": explain and teach (digitnet.inside) on the uploaded picture,
                 the sessions of taught copies with their bounds, keep and forget
    app.py       the route table (API_ROUTES, each route once) on Starlette, the page's static files,
                 JSON errors, the security headers
    contract.py  the OpenAPI 3.1 document of every route, built from API_ROUTES and the settings table
    guards.py    what every request passes first: Host/Origin checks, body limits before reading
    protocol.py  the connection: uvicorn's httptools protocol with request deadlines, a header bound,
                 JSON errors for what the parser refuses
    events.py    GET /api/train/events: one watcher thread, the streams wait on the event loop
    server.py    running it: uvicorn on a socket bound at start, start_in_thread, stop on a signal
    static/      the page, shipped as package data: index.html, style.css, favicon.svg, and its
                 JavaScript as ES modules (app.js, the entry, imports the rest)
"""
