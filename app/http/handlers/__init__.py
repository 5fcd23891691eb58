"""The handlers, a module per API: native (/tag, /embed and TEI's paths for it, /health, /info,
/metrics), OpenAI's (/v1/embeddings) and Hugging Face's token-classification pipeline.

Each handler is thin: body -> plain Python -> engine -> answer. A POST route's handler takes
its validated body, the engine and the request's `receive` from the dispatcher
(app/http/dispatcher.py) and gives the JSON body's bytes, or a `Stream` (app.http.connection)
for an answer that may be long; a GET route's handler takes FastAPI's dependencies.
"""
