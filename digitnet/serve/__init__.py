"""`digitnet serve`: a local web page to draw a digit and watch the network answer, and a JSON API.

    api.py      what the routes do (predict, model, evaluate), as plain functions of the request body:
                no HTTP here, so it is tested without a socket
    server.py   the HTTP side: routing, the page's static files, and the guards a local server
                still needs (Host/Origin checks, size limits, timeouts, JSON errors)
    static/     index.html, app.js, style.css: the page, shipped as package data
"""
