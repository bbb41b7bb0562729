/**
 * The catalog's only script (served as /-/assets/catalog-<hash>.js), for comfort: copy buttons,
 * and filter selects that apply themselves. Every page works without it.
 */
export const JS = `
'use strict';
document.addEventListener('click', function (e) {
  var b = e.target instanceof Element ? e.target.closest('button[data-copy]') : null;
  if (!b) return;
  var text = b.getAttribute('data-copy') || '';
  var done = function (ok) {
    b.textContent = ok ? 'Copied' : 'Select';
    setTimeout(function () { b.textContent = 'Copy'; }, 1500);
  };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(false); });
  else done(false);
});
document.querySelectorAll('form.filters select').forEach(function (s) {
  s.addEventListener('change', function () { s.form.submit(); });
});
`;
