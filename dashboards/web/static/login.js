// The login page: shows the error and carries ?next= into the form.
const q = new URLSearchParams(location.search);
if (q.get('error')) {
  document.getElementById('error').hidden = false;
}
const next = q.get('next');
if (next && /^\/[A-Za-z0-9/._-]*$/.test(next) && !next.startsWith('//')) {
  document.getElementById('next').value = next;
}
