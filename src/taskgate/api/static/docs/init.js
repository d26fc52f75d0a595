// taskgate's API documentation pages (src/taskgate/api/docs_pages.py): starts Swagger UI
// on #swagger-ui for the OpenAPI document named by its data-openapi-url attribute.
// A file of its own, not an inline script, so that the page's Content-Security-Policy
// can allow scripts from this server only.
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  if (!root) {
    return;
  }
  if (typeof window.SwaggerUIBundle !== "function") {
    root.textContent = "Swagger UI did not load; the OpenAPI document is at " +
      root.getAttribute("data-openapi-url");
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // Swagger UI would otherwise send the document's address to a public validator
    // and show its badge: nothing leaves this server.
    validatorUrl: null,
    // The page shows only the document it names: no ?url= or ?configUrl= from the link.
    queryConfigEnabled: false,
    // A bearer token typed into "Authorize" lives as long as the tab, not in storage.
    persistAuthorization: false
  });
})();
