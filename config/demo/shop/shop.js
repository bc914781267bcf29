// The demo shop's own script (not sitecue's): a cart kept in this browser, the cart and
// checkout pages drawn from it, and what a shop tells sitecue about it:
//   sitecue('event', 'add_to_cart', {product: 'sku-1'})
//   sitecue('event', 'purchase', {value: 99.5, products: ['sku-1', 'sku-2']})
(function () {
  var KEY = 'demo_shop_cart';
  // The catalogue names the shop by its real address; the demo serves it wherever it is
  // opened, so a link to a product (a recommendation's card) leads to the same page here.
  var HOME = 'https://shop.example/';

  function read() {
    try {
      return JSON.parse(localStorage.getItem(KEY)) || [];
    } catch (e) {
      return [];
    }
  }
  function write(lines) {
    localStorage.setItem(KEY, JSON.stringify(lines));
  }
  function euros(n) {
    return '€' + n.toFixed(2);
  }
  function total(lines) {
    return Math.round(lines.reduce(function (sum, l) { return sum + l.price * l.qty; }, 0) * 100) / 100;
  }

  document.addEventListener('click', function (e) {
    var button = e.target.closest && e.target.closest('.add-to-cart[data-sc-product]');
    if (button) {
      var d = button.dataset;
      var lines = read();
      var line = lines.find(function (l) { return l.id === d.scProduct; });
      if (line) line.qty += 1;
      else lines.push({ id: d.scProduct, name: d.name, price: +d.price, image: d.image, qty: 1 });
      write(lines);
      sitecue('event', 'add_to_cart', { product: d.scProduct });
      button.textContent = 'Added to cart';
      return;
    }
    var link = e.target.closest && e.target.closest('a[href^="' + HOME + '"]');
    if (link && !e.defaultPrevented && e.button === 0 && !e.metaKey && !e.ctrlKey) {
      e.preventDefault();
      location.assign(location.origin + '/' + link.href.slice(HOME.length));
    }
  });

  function drawLines(list, lines) {
    list.textContent = '';
    if (!lines.length) {
      list.insertAdjacentHTML('beforeend', '<li class="empty">Nothing in your cart yet.</li>');
      return;
    }
    lines.forEach(function (l) {
      var item = document.createElement('li');
      item.dataset.product = l.id;
      var img = document.createElement('img');
      img.src = l.image;
      img.alt = '';
      img.width = 80;
      img.height = 60;
      var name = document.createElement('a');
      name.href = '/shop/products/' + encodeURIComponent(l.id);
      name.textContent = l.name;
      item.append(img, name, ' × ' + l.qty + ' ' + euros(l.price * l.qty));
      list.append(item);
    });
    var sum = document.createElement('li');
    sum.className = 'total';
    sum.textContent = 'Total ' + euros(total(lines));
    list.append(sum);
  }

  var list = document.getElementById('cart-lines');
  if (list) drawLines(list, read());

  var buy = document.getElementById('buy');
  if (buy) {
    buy.addEventListener('click', function () {
      var lines = read();
      var order = { value: total(lines), products: lines.map(function (l) { return l.id; }) };
      sitecue('event', 'purchase', lines.length ? order : undefined);
      write([]);
      buy.textContent = 'Thank you for your order!';
      buy.disabled = true;
    });
  }
})();
