"""PayFiP / TIPI régie: families pay their school invoice online through the DGFiP.

The package is optional and light to import: the web-service client (``client``),
request models and their validation (``models``), the SOAP envelopes (``soap``), a
local fake PayFiP speaking the same contract (``fake``), payments in the state store
(``tables``, ``ledger``), the notification receiver (``receiver``), the legacy TIPI URL
builder (``tipi``) and the Datamatrix of paiement de proximité (``datamatrix``).
Heavy imports (httpx, starlette, uvicorn, pystrich) happen inside those modules only.
"""
