! Gradient descent in Fortran on the rosenbrock function (n = 100), exported by adjit and
! called through iso_c_binding.
!
!   adjit export ir/models/rosenbrock.ir --grad -o build/rosenbrock
!   gfortran -O2 examples/fortran/descent.f90 build/rosenbrock.o -o descent && ./descent
!
! rosenbrock_grad(arg, res, work): arg = {x(100)}, res = {f, grad_x(100)}, 0 on success.
program descent
  use iso_c_binding
  implicit none
  interface
    integer(c_int) function rosenbrock_grad(arg, res, work) bind(C, name="rosenbrock_grad")
      import :: c_int, c_ptr, c_double
      type(c_ptr), intent(in) :: arg(*)
      type(c_ptr), intent(in) :: res(*)
      real(c_double), intent(inout) :: work(*)
    end function
    integer(c_size_t) function rosenbrock_grad_work() bind(C, name="rosenbrock_grad_work")
      import :: c_size_t
    end function
    integer(c_int) function rosenbrock_grad_n_in() bind(C, name="rosenbrock_grad_n_in")
      import :: c_int
    end function
  end interface

  integer, parameter :: n = 100
  real(c_double), target :: x(n), g(n), f, trial(n), tg(n), tf
  real(c_double), allocatable :: work(:)
  type(c_ptr) :: arg(1), res(2), targ(1), tres(2)
  real(c_double) :: step
  integer :: it, tries, i

  if (rosenbrock_grad_n_in() /= 1) stop 1
  allocate(work(max(1_c_size_t, rosenbrock_grad_work())))
  do i = 1, n
    x(i) = -1.2d0 + 0.01d0 * i
  end do
  arg(1) = c_loc(x)
  res(1) = c_loc(f)
  res(2) = c_loc(g)
  targ(1) = c_loc(trial)
  tres(1) = c_loc(tf)
  tres(2) = c_loc(tg)
  if (rosenbrock_grad(arg, res, work) /= 0) stop 2

  step = 1.0d-3
  do it = 0, 200
    if (mod(it, 20) == 0) print '(a, i4, es24.15)', 'loss ', it, f
    do tries = 1, 60
      trial = x - step * g
      if (rosenbrock_grad(targ, tres, work) /= 0) stop 3
      if (tf < f) exit
      step = step / 2
    end do
    if (.not. (tf < f)) exit
    x = trial
    g = tg
    f = tf
    step = step * 1.5d0
  end do
  print '(a, es24.15)', 'final loss ', f
end program descent
